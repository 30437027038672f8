package main

import (
	"errors"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/internal/loadtest"
	"github.com/spf13/cobra"
)

// benchFlags are bench's flags: loadtest's options and what the CLI
// decides (output, which run, TLS files).
type benchFlags struct {
	loadtest.Options
	tls     feed.ClientTLS
	json    bool
	compare bool
}

func newBenchCmd() *cobra.Command {
	var o benchFlags
	cmd := &cobra.Command{
		Use:   "bench (--addr HOST:PORT[,HOST:PORT...] | --compare) [flags] [FILE...]",
		Short: "Load an MLLP receiver and measure ACK rate and latency",
		Long:  help("bench"),
		RunE:  func(cmd *cobra.Command, args []string) error { return runBench(cmd, args, o) },
	}
	f := cmd.Flags()
	o.Flags(f)
	o.tls.Register(f)
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.BoolVar(&o.compare, "compare", false, "start a broker and measure it against the raw-MLLP and raw-JetStream ceilings (see above)")
	return cmd
}

func runBench(cmd *cobra.Command, args []string, o benchFlags) error {
	var err error
	if o.TLS, err = o.tls.Config(); err != nil {
		return err
	}
	if len(args) > 0 {
		msgs, failures := readMessages(cmd, args)
		if failures > 0 || len(msgs) == 0 {
			return errors.New("no messages to send from the files given")
		}
		for _, m := range msgs {
			o.Raw = append(o.Raw, m.Raw)
		}
	}
	if o.compare {
		r, err := loadtest.Compare(cmd.Context(), o.Options, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		loadtest.PrintCompare(cmd.OutOrStdout(), r, o.json)
		if !r.OK() {
			return exitError{1}
		}
		return nil
	}
	res, err := loadtest.Bench(cmd.Context(), o.Options, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	loadtest.Print(cmd.OutOrStdout(), res, o.json)
	if !res.OK() {
		return exitError{1}
	}
	return nil
}
