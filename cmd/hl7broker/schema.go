package main

import (
	"github.com/hl7broker/hl7broker/config"
	"github.com/spf13/cobra"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the configuration file",
		Long: `Schema prints a JSON Schema (draft 2020-12) of hl7broker.yaml: every key,
its type and allowed values. Point your editor at it (for example with the
comment "# yaml-language-server: $schema=PATH" at the top of the file) to
complete and check the configuration as you type. docs/hl7broker.schema.json
is the same schema.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Schema())
			return err
		},
	}
}
