package main

import (
	"fmt"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/store"
	"github.com/spf13/cobra"
)

func newCheckCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file as a whole",
		Long:  help("check"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := config.Load(file)
			if err == nil {
				err = store.CheckNATS(file, c) // an external cluster's max_payload
			}
			if err != nil {
				printConfigError(cmd.OutOrStdout(), file, err)
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%s)\n", file, c.Summary())
			for _, w := range c.Warnings() {
				fmt.Fprintf(cmd.OutOrStdout(), "warning: %s: %s\n", w.Key, w.Message)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the configuration file",
		Long:  help("schema"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Schema())
			return err
		},
	}
}
