package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/cobra"
)

type sendOptions struct {
	addr            string
	tls             clientTLSFlags
	keepTerminators bool
	freshControlID  bool
	repeat          int
	rate            float64
	timeout         time.Duration
}

func newSendCmd() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send --addr HOST:PORT [flags] [FILE...]",
		Short: "Send HL7 messages over MLLP and check each ACK",
		Long: `Send reads HL7 files (standard input when none is given), splits batches and
back-to-back messages, strips byte-order marks, ends every segment with CR
(unless --keep-terminators), sends each message over one MLLP connection and
waits for its ACK. It prints one line per message, tab-separated:

  FILE  INDEX  CONTROL-ID  ACK-CODE  ERROR-TEXT

and exits 0 only if every ACK was AA or CA with MSA-2 equal to the MSH-10 sent.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runSend(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "receiver's HOST:PORT (required)")
	o.tls.register(f)
	f.BoolVar(&o.keepTerminators, "keep-terminators", false, "send segments with the file's own terminators")
	f.BoolVar(&o.freshControlID, "fresh-control-id", false, "give each message sent a new MSH-10")
	f.IntVar(&o.repeat, "repeat", 1, "send the files this many times")
	f.Float64Var(&o.rate, "rate", 0, "messages per second at most (0: as fast as ACKs come back)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	_ = cmd.MarkFlagRequired("addr")
	return cmd
}

// outgoing is one message to send, as read from its file.
type outgoing struct {
	file  string
	index int
	raw   []byte
}

func runSend(cmd *cobra.Command, args []string, o sendOptions) error {
	if o.repeat < 1 {
		return errors.New("--repeat must be at least 1")
	}
	tlsCfg, err := o.tls.config()
	if err != nil {
		return err
	}
	msgs, readFailures := readOutgoing(cmd, args)
	client := &mllp.Client{Addr: o.addr, TLSConfig: tlsCfg, ReplyTimeout: o.timeout, MaxBackoff: 5 * time.Second}
	defer client.Close()

	var tick <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
		defer t.Stop()
		tick = t.C
	}
	out := cmd.OutOrStdout()
	start := time.Now()
	sent, accepted := 0, 0
	for range o.repeat {
		for _, msg := range msgs {
			if tick != nil && sent > 0 {
				select {
				case <-tick:
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				}
			}
			line, ok := sendOne(cmd.Context(), client, msg, o)
			fmt.Fprintln(out, line)
			sent++
			if ok {
				accepted++
			}
			if cmd.Context().Err() != nil {
				return cmd.Context().Err()
			}
		}
	}
	elapsed := time.Since(start)
	fmt.Fprintf(cmd.ErrOrStderr(), "sent %d, accepted %d, failed %d in %s (%.0f msg/s)\n",
		sent, accepted, sent-accepted+readFailures, elapsed.Round(time.Millisecond), float64(sent)/max(elapsed.Seconds(), 1e-9))
	if accepted != sent || readFailures > 0 {
		return exitError{1}
	}
	return nil
}

// readOutgoing reads and splits every file (or stdin), printing a line for
// each that cannot be split.
func readOutgoing(cmd *cobra.Command, args []string) ([]outgoing, int) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	var msgs []outgoing
	failures := 0
	for _, name := range args {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(name)
		}
		if err == nil {
			var b *hl7.Batch
			if b, err = hl7.SplitBatch(data, hl7.Limits{}); err == nil {
				for i, m := range b.Messages {
					msgs = append(msgs, outgoing{file: name, index: i + 1, raw: m})
				}
				for _, w := range b.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", name, w.Reason)
				}
				continue
			}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s\t-\t-\t-\t%s\n", name, oneLine(err.Error()))
		failures++
	}
	return msgs, failures
}

// sendOne sends one message and returns its report line and whether it
// was accepted.
func sendOne(ctx context.Context, c *mllp.Client, msg outgoing, o sendOptions) (string, bool) {
	r := feed.SendOne(ctx, c, msg.raw, feed.SendOptions{KeepTerminators: o.keepTerminators, FreshControlID: o.freshControlID})
	return report(msg, r.ControlID, r.Code, r.Text), r.Accepted
}

func report(msg outgoing, controlID, code, text string) string {
	controlID, code = cmp.Or(controlID, "-"), cmp.Or(code, "-")
	return fmt.Sprintf("%s\t%d\t%s\t%s\t%s", msg.file, msg.index, controlID, code, oneLine(text))
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ", "\t", " ").Replace(s) }
