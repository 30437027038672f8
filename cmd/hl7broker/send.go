package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/cobra"
)

type sendOptions struct {
	addr   string
	tls    feed.ClientTLS
	send   feed.SendOptions
	repeat int
	rate   float64

	timeout time.Duration
}

func newSendCmd() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send --addr HOST:PORT [flags] [FILE...]",
		Short: "Send HL7 messages over MLLP and check each ACK",
		Long:  help("send"),
		RunE:  func(cmd *cobra.Command, args []string) error { return runSend(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "receiver's HOST:PORT (required)")
	o.tls.Register(f)
	f.BoolVar(&o.send.KeepTerminators, "keep-terminators", false, "send segments with the file's own terminators")
	f.BoolVar(&o.send.FreshControlID, "fresh-control-id", false, "give each message sent a new MSH-10")
	f.IntVar(&o.repeat, "repeat", 1, "send the files this many times")
	f.Float64Var(&o.rate, "rate", 0, "messages per second at most (0: as fast as ACKs come back)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	_ = cmd.MarkFlagRequired("addr")
	return cmd
}

func runSend(cmd *cobra.Command, args []string, o sendOptions) error {
	if o.repeat < 1 {
		return errors.New("--repeat must be at least 1")
	}
	tlsCfg, err := o.tls.Config()
	if err != nil {
		return err
	}
	msgs, readFailures := readMessages(cmd, args)
	client := &mllp.Client{Addr: o.addr, TLSConfig: tlsCfg, ReplyTimeout: o.timeout, MaxBackoff: 5 * time.Second}
	defer client.Close()
	start := time.Now()
	sent, accepted, err := feed.SendAll(cmd.Context(), client, msgs, o.repeat, o.rate, o.send, func(m feed.Message, r feed.SendResult) {
		fmt.Fprintln(cmd.OutOrStdout(), m.Line(r))
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(cmd.ErrOrStderr(), "sent %d, accepted %d, failed %d in %s (%.0f msg/s)\n",
		sent, accepted, sent-accepted+readFailures, elapsed.Round(time.Millisecond), float64(sent)/max(elapsed.Seconds(), 1e-9))
	if accepted != sent || readFailures > 0 {
		return exitError{1}
	}
	return nil
}

// readMessages reads and splits every file (or stdin), printing a line for
// each that cannot be split and a warning for what a split mended.
func readMessages(cmd *cobra.Command, args []string) ([]feed.Message, int) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	failures := 0
	msgs := feed.ReadMessages(args, cmd.InOrStdin(), func(name string, err error) {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\t-\t-\t-\t%s\n", name, feed.OneLine(err.Error()))
		failures++
	}, func(name, reason string) { fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", name, reason) })
	return msgs, failures
}
