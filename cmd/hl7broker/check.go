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
		Long: `Check loads the configuration (with HL7BROKER_* environment overrides) and
prints every problem with its key path, such as routes[0].to[1]. With an
external NATS cluster (nats.url) it also connects and checks that every
listener's max_message_bytes fits the servers' max_payload. It exits 0
when the configuration is valid and 1 when it is not.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := config.Load(file)
			if err == nil {
				err = store.CheckNATS(file, c) // an external cluster's max_payload
			}
			if err != nil {
				printConfigError(cmd.OutOrStdout(), file, err)
				return exitError{1}
			}
			sources := ""
			if len(c.Sources) > 0 {
				sources = fmt.Sprintf("%d sources, ", len(c.Sources))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d listeners, %s%d routes, %d destinations)\n",
				file, len(c.Listeners), sources, len(c.Routes), len(c.Destinations))
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
