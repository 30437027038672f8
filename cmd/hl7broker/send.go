package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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

// sendOne prepares, sends and checks one message, returning its report
// line and whether it was accepted.
func sendOne(ctx context.Context, c *mllp.Client, msg outgoing, o sendOptions) (string, bool) {
	payload, controlID, err := prepare(msg.raw, o)
	if err != nil {
		return report(msg, "-", "-", "not sent: "+err.Error()), false
	}
	reply, err := c.Send(ctx, payload)
	if err != nil {
		return report(msg, controlID, "-", err.Error()), false
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return report(msg, controlID, "-", "reply is not an ACK: "+err.Error()), false
	}
	text := ack.Text
	for _, e := range ack.Errors {
		text = strings.TrimSpace(fmt.Sprintf("%s [ERR %d %s %s %s]", text, e.Code, e.CodeText, e.Location, e.Text))
	}
	if controlID != "" && ack.ControlID != controlID {
		return report(msg, controlID, string(ack.Code), fmt.Sprintf("MSA-2 is %q, not the MSH-10 sent %s", ack.ControlID, text)), false
	}
	return report(msg, controlID, string(ack.Code), text), ack.Positive()
}

// prepare gives the bytes to send and the control ID sent. A message that
// does not parse is sent anyway (to test a receiver's rejections) with
// terminators made CR by plain replacement.
func prepare(raw []byte, o sendOptions) ([]byte, string, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		if o.keepTerminators {
			return raw, "", nil
		}
		// SplitBatch has already removed any byte-order mark.
		r := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r"))
		return bytes.ReplaceAll(r, []byte("\n"), []byte("\r")), "", nil
	}
	if o.freshControlID {
		if err := m.Set(hl7.PathMSH10, hl7.NewControlID()); err != nil {
			return nil, "", err
		}
	}
	if o.keepTerminators {
		return m.Bytes(), m.ControlID(), nil
	}
	return m.AppendTerminated(nil, "\r"), m.ControlID(), nil
}

func report(msg outgoing, controlID, code, text string) string {
	if controlID == "" {
		controlID = "-"
	}
	return fmt.Sprintf("%s\t%d\t%s\t%s\t%s", msg.file, msg.index, controlID, code, oneLine(text))
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ", "\t", " ").Replace(s) }
