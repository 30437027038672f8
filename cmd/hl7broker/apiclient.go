package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hl7broker/hl7broker/client"
)

// Exit codes of the commands that talk to a running broker's admin API.
const (
	exitFailed       = 1 // the server answered an error, or some items of a bulk operation failed
	exitUsage        = 2
	exitUnauthorized = 3 // 401 or 403: no valid token, or a role that may not
	exitNotFound     = 4
	exitUnreachable  = 5 // no answer from --server
)

// apiClient is the API client of one command, with its --json flag.
type apiClient struct {
	*client.Client
	json bool // --json: print the server's JSON as it came
}

// apiFlags are the flags every API command shares.
func apiFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("server", "", "the broker's admin URL (default $HL7BROKER_SERVER, else http://127.0.0.1:8080)")
	f.String("token-file", "", "file holding the API token (default $HL7BROKER_TOKEN_FILE)")
	f.String("ca-file", "", "CA certificate (PEM) to trust for an https --server")
	f.Bool("json", false, "print JSON (for scripts) instead of tables")
}

func newAPIClient(cmd *cobra.Command) (*apiClient, error) {
	server, _ := cmd.Flags().GetString("server")
	tokenFile, _ := cmd.Flags().GetString("token-file")
	caFile, _ := cmd.Flags().GetString("ca-file")
	asJSON, _ := cmd.Flags().GetBool("json")
	if tokenFile == "" {
		tokenFile = os.Getenv("HL7BROKER_TOKEN_FILE")
	}
	if tokenFile == "" {
		return nil, usageError("give the API token's file: --token-file FILE or HL7BROKER_TOKEN_FILE")
	}
	c, err := client.New(client.Options{Server: cmp.Or(server, os.Getenv("HL7BROKER_SERVER")), TokenFile: tokenFile, CAFile: caFile})
	if err != nil {
		return nil, usageError(strings.TrimPrefix(strings.Replace(err.Error(), "CA file", "--ca-file", 1), "usage: "))
	}
	return &apiClient{Client: c, json: asJSON}, nil
}

// cliError is a failure with its exit code, printed once by the command.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func usageError(msg string) error { return &cliError{exitUsage, msg} }

// call is Client.Call with the server's answer as a cliError: its exit
// code by status.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	err := c.Call(ctx, method, path, query, body, out)
	var ce *client.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrUsage):
		return usageError(strings.TrimPrefix(err.Error(), "usage: "))
	case !errors.As(err, &ce):
		return err
	case ce.Status == 0:
		return &cliError{exitUnreachable, ce.Message}
	case ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden:
		return &cliError{exitUnauthorized, ce.Error()}
	case ce.Status == http.StatusNotFound:
		return &cliError{exitNotFound, ce.Error()}
	case ce.Status == http.StatusBadRequest:
		return &cliError{exitUsage, ce.Error()}
	}
	return &cliError{exitFailed, ce.Error()}
}

// apiCommand runs fn with a client and turns its error into an exit code,
// printing the message on stderr.
func apiCommand(fn func(cmd *cobra.Command, c *apiClient, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newAPIClient(cmd)
		if err == nil {
			err = fn(cmd, c, args)
		}
		if err == nil {
			return nil
		}
		code := exitFailed
		var ce *cliError
		if errors.As(err, &ce) {
			code = ce.code
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "hl7broker:", err)
		return exitError{code}
	}
}
