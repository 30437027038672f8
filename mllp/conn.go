package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// serverConn is one accepted connection and its read-handle-reply loop.
type serverConn struct {
	srv  *Server
	rwc  net.Conn
	info ConnInfo

	mu     sync.Mutex
	active bool // handling a frame: Shutdown waits for it
	closed bool
	cancel context.CancelFunc
}

func (c *serverConn) log(level zerolog.Level) *zerolog.Event {
	return c.srv.Logger.WithLevel(level).Str("listener", c.info.Listener).Uint64("conn", c.info.ID).Str("remote", c.info.RemoteAddr.String())
}

func (c *serverConn) serve() {
	s := c.srv
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
	defer func() {
		cancel()
		c.rwc.Close()
		s.trackConn(c, false)
		s.Budget.giveConn()
	}()
	setKeepAlive(c.rwc)
	setReplyBuffer(c.rwc)
	readTimeout := orDefault(s.ReadTimeout, DefaultReadTimeout)
	writeTimeout := orDefault(s.WriteTimeout, DefaultWriteTimeout)

	if tc, ok := c.rwc.(*tls.Conn); ok {
		if readTimeout > 0 {
			_ = tc.SetDeadline(time.Now().Add(readTimeout))
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			c.log(zerolog.WarnLevel).Str("reason", err.Error()).Msg("TLS handshake failed; connection closed")
			return
		}
		_ = tc.SetDeadline(time.Time{})
		state := tc.ConnectionState()
		c.info.TLS = &state
	}
	c.log(zerolog.DebugLevel).Msg("connection opened")

	r := NewReader(c.rwc)
	defer r.Close()
	waitReadable := readableWaiter(c.rwc) // nil: buffers are kept while idle
	r.MaxFrameBytes, r.AllowMissingCR, r.Budget = s.MaxFrameBytes, s.AllowMissingCR, s.Budget
	inFrame, inJunk := false, false
	r.OnFrameStart = func() {
		inFrame, inJunk = true, false
		if readTimeout > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(readTimeout))
		}
	}
	r.OnJunk = func() { // bytes that are no frame get the read timeout too
		inJunk = true
		if readTimeout > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(readTimeout))
		}
	}
	quiet := false // the sender said nothing for releaseAfter: wait for it holding no buffers
	for {
		inFrame, inJunk = false, false
		now := time.Now()
		var idleDeadline time.Time
		if s.IdleTimeout > 0 {
			idleDeadline = now.Add(s.IdleTimeout)
		}
		if quiet && r.Buffered() == 0 {
			// An error (the idle deadline, a close) is the read's to
			// report: ReadFrame meets it at once.
			_ = c.rwc.SetReadDeadline(idleDeadline)
			r.Release()
			_ = waitReadable()
		}
		quiet = false
		// A busy sender's next message comes before releaseAfter, read as
		// ever; one that stays quiet ends this read, and the next waits.
		deadline, releasing := idleDeadline, false
		if waitReadable != nil && r.Buffered() == 0 && (idleDeadline.IsZero() || now.Add(releaseAfter).Before(idleDeadline)) {
			deadline, releasing = now.Add(releaseAfter), true
		}
		_ = c.rwc.SetReadDeadline(deadline)

		junk := r.JunkBytes
		frame, err := r.ReadFrame()
		if err != nil && releasing && !inFrame && !inJunk && r.JunkBytes == junk && errors.Is(err, os.ErrDeadlineExceeded) {
			quiet = true
			continue
		}
		if n := r.JunkBytes - junk; n > 0 {
			s.stats.junk.Add(n)
			if err != nil && inJunk && errors.Is(err, os.ErrDeadlineExceeded) {
				c.log(zerolog.WarnLevel).Int64("bytes", n).Dur("read_timeout", readTimeout).
					Msg("bytes without a start block for the read timeout; connection closed")
				return
			}
			c.log(zerolog.WarnLevel).Int64("bytes", n).Msg("discarded bytes outside a frame")
		}
		if err != nil {
			var fe *FrameError
			if errors.As(err, &fe) {
				s.stats.refusedFrames.Add(1)
				c.log(zerolog.WarnLevel).Str("reason", fe.Reason).Int("size", fe.Size).Int("max", r.MaxFrameBytes).Msg("frame refused; reading on from the next start block")
				if rh, ok := s.Handler.(RejectHandler); ok && c.begin() {
					reply, ok := c.call(func() []byte { return rh.RejectMLLP(ctx, &c.info, fe) })
					if !ok || !c.reply(reply, writeTimeout) || !c.end() {
						return
					}
				}
				continue
			}
			if errors.Is(err, ErrFrameBudget) {
				s.stats.refusedFrames.Add(1)
				c.log(zerolog.WarnLevel).Int64("budget", s.Budget.FrameBytes).
					Msg("frame refused: the frames being received on all connections hold the listeners' memory budget; connection closed (the sender resends)")
				return
			}
			c.logReadEnd(err, inFrame)
			return
		}
		if len(frame) == 0 {
			c.log(zerolog.DebugLevel).Msg("empty frame ignored (keepalive)")
			continue
		}
		if !c.begin() {
			return // shutting down: the sender gets no reply and resends
		}
		s.stats.frames.Add(1)
		reply, ok := c.call(func() []byte { return s.Handler.ServeMLLP(ctx, &c.info, frame) })
		if !ok || !c.reply(reply, writeTimeout) || !c.end() {
			return
		}
	}
}

// call runs a handler, recovering a panic as net/http does: the panic and
// its stack are logged (never the frame), the connection is closed without
// a reply, so the sender resends, and every other connection goes on.
func (c *serverConn) call(handle func() []byte) (reply []byte, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.stats.panics.Add(1)
			c.log(zerolog.ErrorLevel).Str("panic", fmt.Sprintf("%T", p)).Bytes("stack", debug.Stack()).
				Msg("handler panicked; connection closed without a reply")
			reply, ok = nil, false
		}
	}()
	return handle(), true
}

// begin marks the connection as handling a frame; false if it was closed.
func (c *serverConn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.active = true
	return true
}

// end marks the frame done; false if the server is shutting down.
func (c *serverConn) end() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = false
	return !c.closed && !c.srv.inShutdown.Load()
}

func (c *serverConn) reply(msg []byte, timeout time.Duration) bool {
	if msg == nil {
		return true
	}
	if timeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(timeout))
	}
	if err := WriteFrame(c.rwc, msg); err != nil {
		c.log(zerolog.WarnLevel).Str("reason", err.Error()).Int("size", len(msg)).Msg("writing the reply failed; connection closed")
		return false
	}
	return true
}

func (c *serverConn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active && !c.closed {
		c.closed = true
		c.rwc.Close()
	}
}

func (c *serverConn) forceClose() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	c.rwc.Close()
}

func (c *serverConn) logReadEnd(err error, inFrame bool) {
	c.mu.Lock()
	closedByUs := c.closed
	c.mu.Unlock()
	switch {
	case closedByUs:
		c.log(zerolog.DebugLevel).Msg("connection closed for shutdown")
	case errors.Is(err, io.EOF):
		c.log(zerolog.DebugLevel).Msg("connection closed by the sender")
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log(zerolog.WarnLevel).Msg("connection closed by the sender inside a frame")
	case errors.Is(err, os.ErrDeadlineExceeded) && inFrame:
		c.log(zerolog.WarnLevel).Dur("read_timeout", orDefault(c.srv.ReadTimeout, DefaultReadTimeout)).Msg("frame not complete within the read timeout (slow sender); connection closed")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log(zerolog.InfoLevel).Dur("idle_timeout", c.srv.IdleTimeout).Msg("idle connection closed")
	default:
		c.log(zerolog.WarnLevel).Str("reason", err.Error()).Msg("read failed; connection closed")
	}
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// replyBuffer is the kernel's send buffer for a connection's replies.
// Left to itself Linux grows it to megabytes, so a sender that never reads
// its ACKs (against MLLP: one message, then its ACK) is answered into the
// buffer for a minute before a write blocks and WriteTimeout can end it.
// ACKs are small, and a sender that reads them never has more than one
// waiting: 64 KiB (the kernel doubles it) is ample, and bounds what such
// a sender gets before the write timeout runs.
const replyBuffer = 64 << 10

func setReplyBuffer(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(replyBuffer)
	}
}

// setKeepAlive turns TCP keepalive on, so a sender that vanished without
// closing is noticed even with no idle timeout.
func setKeepAlive(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 6})
	}
}
