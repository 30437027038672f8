package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/fsutil"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

type listenOptions struct {
	addr            string
	out             string
	ack             string
	delay           time.Duration
	maxMessageBytes int
	tls             serverTLSFlags
}

func newListenCmd() *cobra.Command {
	var o listenOptions
	cmd := &cobra.Command{
		Use:   "listen --addr HOST:PORT [--out DIR] [--ack CODE] [--delay D]",
		Short: "Run a test MLLP endpoint that acknowledges every message",
		Long: `Listen is a downstream system for trying destinations and for tests. It answers
each message with the chosen ACK (auto: AA, or CA when the message asks for
enhanced mode; AA, AE or AR force original mode; CA, CE or CR enhanced). Bytes
that are not a message get a reject ACK. With --out it writes each message to
DIR as NNNNNN-<control ID>.hl7 (arrival order), exactly as received.

It prints "listening on ADDR" once ready, logs one line per message (never its
content) and stops cleanly on SIGINT or SIGTERM.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runListen(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:2575", "HOST:PORT to listen on (port 0: any free port)")
	f.StringVar(&o.out, "out", "", "folder to write each received message into")
	f.StringVar(&o.ack, "ack", "auto", "ACK code: auto, AA, AE, AR, CA, CE or CR")
	f.DurationVar(&o.delay, "delay", 0, "wait this long before each ACK")
	f.IntVar(&o.maxMessageBytes, "max-message-bytes", mllp.DefaultMaxFrameBytes, "largest message accepted")
	o.tls.register(f)
	return cmd
}

// ackChoice maps --ack to an outcome and mode.
func ackChoice(code string) (hl7.Outcome, hl7.AckMode, error) {
	switch strings.ToUpper(code) {
	case "AUTO":
		return hl7.Accepted, hl7.AckModeAuto, nil
	case "AA":
		return hl7.Accepted, hl7.AckModeOriginal, nil
	case "AE":
		return hl7.Errored, hl7.AckModeOriginal, nil
	case "AR":
		return hl7.Rejected, hl7.AckModeOriginal, nil
	case "CA":
		return hl7.Accepted, hl7.AckModeEnhanced, nil
	case "CE":
		return hl7.Errored, hl7.AckModeEnhanced, nil
	case "CR":
		return hl7.Rejected, hl7.AckModeEnhanced, nil
	}
	return 0, 0, fmt.Errorf("--ack must be auto, AA, AE, AR, CA, CE or CR, not %q", code)
}

func runListen(cmd *cobra.Command, o listenOptions) error {
	outcome, mode, err := ackChoice(o.ack)
	if err != nil {
		return err
	}
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	tlsCfg, err := o.tls.config()
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
	}
	h := &listenHandler{out: o.out, outcome: outcome, mode: mode, delay: o.delay, log: log}
	srv := &mllp.Server{Name: "listen", Handler: h, TLSConfig: tlsCfg, MaxFrameBytes: o.maxMessageBytes, Logger: log}
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-cmd.Context().Done():
	}
	log.Info().Msg("stopping: finishing messages in flight")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx)
	if serveErr := <-served; !errors.Is(serveErr, mllp.ErrServerClosed) {
		return serveErr
	}
	return err
}

// listenHandler acknowledges every frame and optionally keeps a copy.
type listenHandler struct {
	out     string
	outcome hl7.Outcome
	mode    hl7.AckMode
	delay   time.Duration
	log     zerolog.Logger

	mu  sync.Mutex
	seq int
}

func (h *listenHandler) ServeMLLP(ctx context.Context, c *mllp.ConnInfo, frame []byte) []byte {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	ev := h.log.Info().Int("seq", seq).Str("remote", c.RemoteAddr.String()).Int("size", len(frame))

	var ack []byte
	name := fmt.Sprintf("%06d-unparsed.hl7", seq)
	m, err := hl7.Parse(frame)
	if err != nil {
		var he *hl7.Error
		if !errors.As(err, &he) {
			he = &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Reason: "not an HL7 message"}
		}
		ack = hl7.BuildRejectAck(frame, hl7.AckOptions{Err: he, Text: he.Reason})
		ev = ev.Str("error", he.Reason)
	} else {
		ack = hl7.BuildAck(m, hl7.AckOptions{Outcome: h.outcome, Mode: h.mode})
		name = fmt.Sprintf("%06d-%s.hl7", seq, fsutil.SafeName(m.ControlID()))
		ev = ev.Str("control_id", m.ControlID()).Str("type", m.Type()+"^"+m.Trigger())
	}
	if h.out != "" {
		if err := fsutil.WriteAtomic(filepath.Join(h.out, name), frame); err != nil {
			h.log.Error().Err(err).Int("seq", seq).Msg("could not write the message; answering AE")
			ack = hl7.BuildRejectAck(frame, hl7.AckOptions{Outcome: hl7.Errored, Text: "receiver could not store the message"})
		}
	}
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-ctx.Done():
			return nil
		}
	}
	if a, err := hl7.ParseAck(ack); err == nil {
		ev = ev.Str("ack", string(a.Code))
	}
	ev.Msg("message received")
	return ack
}

// RejectMLLP answers a frame over --max-message-bytes with a reject ACK.
func (h *listenHandler) RejectMLLP(_ context.Context, _ *mllp.ConnInfo, fe *mllp.FrameError) []byte {
	return hl7.BuildRejectAck(fe.Prefix, hl7.AckOptions{
		Err:  &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}},
		Text: fmt.Sprintf("message of %d bytes is over the limit", fe.Size)})
}
