package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/memory"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var file string
	var grace time.Duration
	var watch bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the broker",
		Long:  help("serve"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger(cmd)
			if err != nil {
				return err
			}
			cfg, err := config.Load(file)
			var ce *config.Error
			if errors.As(err, &ce) {
				fmt.Fprintln(cmd.ErrOrStderr(), ce.Error())
				return exitError{1}
			} else if err != nil {
				return err
			}
			memory.ApplyLimit(log, cfg.MemoryLimit)
			memory.ApplyGCPercent(log)
			b, err := broker.Start(cmd.Context(), cfg, log, broker.Hooks{})
			if err != nil {
				log.Error().Err(err).Msg("broker did not start")
				return exitError{1}
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			b.ServeFile(cmd.Context(), file, hup, watch, grace)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (required)")
	cmd.Flags().DurationVar(&grace, "shutdown-grace", 30*time.Second, "how long to wait for messages in flight when stopping")
	cmd.Flags().BoolVar(&watch, "watch", true, "reload the config file when it changes (SIGHUP reloads it either way)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
