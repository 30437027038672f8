package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hl7broker/hl7broker/client"
)

// apiFlags are the flags every API command shares.
func apiFlags(cmd *cobra.Command) { client.Flags(cmd.PersistentFlags()) }

// apiCommand runs fn with a session and turns its error into an exit
// code (client.Exit), printing the message on stderr.
func apiCommand(fn func(cmd *cobra.Command, s *client.Session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := client.FromFlags(cmd.Flags(), cmd.OutOrStdout())
		if err == nil {
			err = fn(cmd, s, args)
		}
		if err == nil {
			return nil
		}
		code, msg := client.Exit(err)
		fmt.Fprintln(cmd.ErrOrStderr(), "hl7broker:", msg)
		return exitError{code}
	}
}
