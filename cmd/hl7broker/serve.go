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
		Long: `Serve runs everything the configuration describes: NATS (embedded, or an
external cluster), the MLLP listeners, the router and the delivery workers.
On SIGINT or SIGTERM it stops accepting, lets messages in flight be stored
and acknowledged, stops delivery (a message being retried stays queued),
stops NATS and exits 0. On SIGHUP, and when the file changes (unless
--watch=false), it validates the whole file again and applies it without a
restart: routes, transforms and destinations swap between two messages,
listeners are added or removed without touching the others. An invalid file
leaves the running configuration in place. It sets Go's soft memory limit
from the config's memory_limit, or in a container (or a systemd unit with
MemoryMax) to three quarters of the container's limit, unless GOMEMLIMIT
is set. Logs are JSON unless --log-format console.`,
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
