package feed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/fsutil"
	"github.com/hl7broker/hl7broker/mllp"
)

// AckChoice maps an ACK code (auto, AA, AE, AR, CA, CE, CR) to an
// Endpoint's outcome and mode.
func AckChoice(code string) (hl7.Outcome, hl7.AckMode, error) {
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
	return 0, 0, fmt.Errorf("the ACK must be auto, AA, AE, AR, CA, CE or CR, not %q", code)
}

// Endpoint is a test downstream system (hl7broker listen): an MLLP
// handler that answers every message with the chosen ACK, and keeps a
// copy of each in Out (NNNNNN-<control ID>.hl7, arrival order) when set.
// It logs one line per message, never its content.
type Endpoint struct {
	Out     string
	Outcome hl7.Outcome
	Mode    hl7.AckMode
	Delay   time.Duration // before each ACK
	Log     zerolog.Logger

	mu  sync.Mutex
	seq int
}

// ServeMLLP answers one frame.
func (h *Endpoint) ServeMLLP(ctx context.Context, c *mllp.ConnInfo, frame []byte) []byte {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	ev := h.Log.Info().Int("seq", seq).Str("remote", c.RemoteAddr.String()).Int("size", len(frame))

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
		ack = hl7.BuildAck(m, hl7.AckOptions{Outcome: h.Outcome, Mode: h.Mode})
		name = fmt.Sprintf("%06d-%s.hl7", seq, fsutil.SafeName(m.ControlID()))
		ev = ev.Str("control_id", m.ControlID()).Str("type", m.Type()+"^"+m.Trigger())
	}
	if h.Out != "" {
		if err := fsutil.WriteAtomic(filepath.Join(h.Out, name), frame); err != nil {
			h.Log.Error().Err(err).Int("seq", seq).Msg("could not write the message; answering AE")
			ack = hl7.BuildRejectAck(frame, hl7.AckOptions{Outcome: hl7.Errored, Text: "receiver could not store the message"})
		}
	}
	if h.Delay > 0 {
		select {
		case <-time.After(h.Delay):
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

// RejectMLLP answers a frame over the server's limit with a reject ACK.
func (h *Endpoint) RejectMLLP(_ context.Context, _ *mllp.ConnInfo, fe *mllp.FrameError) []byte {
	return hl7.BuildRejectAck(fe.Prefix, hl7.AckOptions{
		Err:  &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}},
		Text: fmt.Sprintf("message of %d bytes is over the limit", fe.Size)})
}

// Listen serves h on addr (with TLS when tlsCfg is set) until ctx ends,
// calling ready once it listens; then it lets the messages in flight
// finish, for up to 10 s.
func (h *Endpoint) Listen(ctx context.Context, addr string, tlsCfg *tls.Config, maxFrameBytes int, ready func(net.Addr)) error {
	if h.Out != "" {
		if err := os.MkdirAll(h.Out, 0o755); err != nil {
			return err
		}
	}
	srv := &mllp.Server{Name: "listen", Handler: h, TLSConfig: tlsCfg, MaxFrameBytes: maxFrameBytes, Logger: h.Log}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready(l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	h.Log.Info().Msg("stopping: finishing messages in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serveErr := <-served; !errors.Is(serveErr, mllp.ErrServerClosed) {
		return serveErr
	}
	return err
}
