package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/config"
	"github.com/spf13/cobra"
)

func newRouteCmd() *cobra.Command {
	route := &cobra.Command{Use: "route", Short: "Try routes without running the broker"}
	route.AddCommand(newRouteTestCmd())
	return route
}

type routeTestOptions struct {
	config, listener, out string
}

func newRouteTestCmd() *cobra.Command {
	var o routeTestOptions
	cmd := &cobra.Command{
		Use:   "test --config FILE MESSAGE_FILE...",
		Short: "Show which routes match each message, why, and what each destination would receive",
		Long:  help("route-test"),
		RunE:  func(cmd *cobra.Command, args []string) error { return runRouteTest(cmd, args, o) },
	}
	cmd.Flags().StringVar(&o.config, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&o.listener, "listener", "", "the listener the messages come from")
	cmd.Flags().StringVar(&o.out, "out", "", "write each copy to this folder, exactly as it would be sent")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runRouteTest(cmd *cobra.Command, args []string, o routeTestOptions) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		printConfigError(cmd.OutOrStdout(), o.config, err)
		return exitError{1}
	}
	trial, err := broker.NewTrial(cfg)
	if err != nil {
		fmt.Fprintln(cmd.OutOrStdout(), err)
		return exitError{1}
	}
	if o.listener != "" && !slices.Contains(cfg.Origins(), o.listener) {
		fmt.Fprintf(cmd.OutOrStdout(), "no listener or source is named %q\n", o.listener)
		return exitError{1}
	}
	msgs, failures := readMessages(cmd, args)
	rep := broker.Report{W: cmd.OutOrStdout(), Out: o.out, Listener: o.listener}
	for _, msg := range msgs {
		failures += trial.Write(rep, msg.File, msg.Index, msg.Raw)
	}
	if failures > 0 {
		return exitError{1}
	}
	return nil
}

// printConfigError prints a config's problems as check does.
func printConfigError(w io.Writer, file string, err error) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintf(w, "%s: %d problem(s)\n", file, len(ce.Problems))
	for _, p := range ce.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
