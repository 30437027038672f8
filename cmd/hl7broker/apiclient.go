package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/spf13/cobra"
)

// Exit codes of the commands that talk to a running broker's admin API.
const (
	exitFailed       = 1 // the server answered an error, or some items of a bulk operation failed
	exitUsage        = 2
	exitUnauthorized = 3 // 401 or 403: no valid token, or a role that may not
	exitNotFound     = 4
	exitUnreachable  = 5 // no answer from --server
)

// apiClient talks to /api/v1 with a bearer token.
type apiClient struct {
	server string
	token  string
	http   *http.Client
	json   bool // --json: print the server's JSON as it came
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
	if server == "" {
		server = os.Getenv("HL7BROKER_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	if tokenFile == "" {
		tokenFile = os.Getenv("HL7BROKER_TOKEN_FILE")
	}
	if tokenFile == "" {
		return nil, usageError("give the API token's file: --token-file FILE or HL7BROKER_TOKEN_FILE")
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, usageError("token file: " + err.Error())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageError("--ca-file: " + err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--ca-file: no PEM certificate in " + caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &apiClient{server: strings.TrimRight(server, "/"), token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: 60 * time.Second, Transport: tr}, json: asJSON}, nil
}

// cliError is a failure with its exit code, printed once by the command.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func usageError(msg string) error { return &cliError{exitUsage, msg} }

// call sends a request and decodes the answer into out (raw JSON kept in
// *json.RawMessage when out is one).
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.server + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return usageError(secret.Error(err).Error())
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &cliError{exitUnreachable, "cannot reach the broker: " + secret.Error(err).Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &cliError{exitUnreachable, "reading the answer: " + err.Error()}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		code := exitFailed
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			code = exitUnauthorized
		case http.StatusNotFound:
			code = exitNotFound
		case http.StatusBadRequest:
			code = exitUsage
		}
		return &cliError{code, fmt.Sprintf("%s (HTTP %d)", e.Error, resp.StatusCode)}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
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

// printJSON prints raw JSON indented.
func printJSON(w io.Writer, raw []byte) {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}
