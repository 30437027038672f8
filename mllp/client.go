package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for zero Client fields.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultReplyTimeout = 30 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
)

// ErrClientClosed is returned by Send after Close.
var ErrClientClosed = errors.New("mllp: client closed")

// Client sends one frame at a time to an MLLP server and waits for the
// reply frame, as MLLP senders do. It keeps the connection for the next
// Send. After any error it closes the connection, and the next Send
// reconnects once a backoff (doubling from MinBackoff to MaxBackoff, with
// jitter) has passed. The caller decides what a reply means and whether
// to resend. Safe for concurrent use; Sends are serialised.
type Client struct {
	Addr           string
	TLSConfig      *tls.Config // TLS (1.2 at least) when set
	DialTimeout    time.Duration
	ReplyTimeout   time.Duration // from the end of the write to the whole reply
	MaxReplyBytes  int           // 0: DefaultMaxFrameBytes
	AllowMissingCR bool
	MinBackoff     time.Duration
	MaxBackoff     time.Duration
	Logger         zerolog.Logger
	// EagerReplies waits for each reply with short read deadlines before
	// blocking (plain TCP only): for a connection that carries a queue,
	// whose next message waits for this reply (see quickReader).
	EagerReplies bool

	mu       sync.Mutex
	conn     net.Conn
	reader   *Reader
	quick    *quickReader // the reader's source on a plain TCP connection
	failures int
	retryAt  time.Time
	closed   bool
}

// Send writes msg as one frame and returns the reply frame's message (a
// copy the caller owns). It dials first when there is no connection,
// waiting out the backoff after earlier failures, or returns ctx.Err()
// if ctx ends first.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	if c.conn != nil && stale(c.conn) { // closed by a receiver that restarted: dial anew, at no cost
		c.Logger.Debug().Str("addr", c.Addr).Msg("the idle connection was closed by the receiver; connecting again")
		c.conn.Close()
		c.conn, c.reader, c.quick = nil, nil, nil
	}
	if c.conn == nil {
		if err := c.dial(ctx); err != nil {
			return nil, err
		}
	}
	reply, err := c.roundTrip(ctx, msg)
	if err != nil {
		c.fail()
		return nil, fmt.Errorf("mllp: %s: %w", c.Addr, err)
	}
	c.failures = 0
	return reply, nil
}

func (c *Client) dial(ctx context.Context) error {
	if wait := time.Until(c.retryAt); c.failures > 0 && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	d := &net.Dialer{Timeout: orDefault(c.DialTimeout, DefaultDialTimeout),
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 6}}
	var conn net.Conn
	var err error
	if c.TLSConfig != nil {
		cfg := c.TLSConfig.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", c.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.Addr)
	}
	if err != nil {
		c.fail()
		return fmt.Errorf("mllp: dial %s: %w", c.Addr, err)
	}
	c.conn = conn
	if c.EagerReplies && c.TLSConfig == nil {
		c.quick = &quickReader{conn: conn}
		c.reader = NewReader(c.quick)
	} else {
		c.reader = NewReader(conn)
	}
	c.reader.MaxFrameBytes, c.reader.AllowMissingCR = c.MaxReplyBytes, c.AllowMissingCR
	c.Logger.Debug().Str("addr", c.Addr).Msg("connected")
	return nil
}

func (c *Client) roundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	// A cancelled ctx interrupts a blocked write or read. The callback runs
	// in its own goroutine, possibly after this call has failed and fail()
	// has dropped c.conn: it must use the conn of this round trip.
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	timeout := orDefault(c.ReplyTimeout, DefaultReplyTimeout)
	deadline := time.Time{}
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	if q := c.quick; q != nil {
		q.ctx, q.deadline = ctx, deadline
		defer func() { q.ctx = nil }()
	}
	if err := WriteFrame(c.conn, msg); err != nil {
		return nil, ctxErr(ctx, err)
	}
	reply, err := c.reader.ReadFrame()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return append([]byte(nil), reply...), nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// fail drops the connection and schedules the next dial.
func (c *Client) fail() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.reader, c.quick = nil, nil, nil
	}
	c.failures++
	lo, hi := orDefault(c.MinBackoff, DefaultMinBackoff), orDefault(c.MaxBackoff, DefaultMaxBackoff)
	b := lo << min(c.failures-1, 20)
	if b > hi || b <= 0 {
		b = hi
	}
	b = b/2 + rand.N(b/2+1) // jitter: half to all of it
	c.retryAt = time.Now().Add(b)
}

// Reset drops the connection, if any, without closing the Client: the
// next Send dials a new one at once. For a caller that finds the
// connection's replies out of step, such as an ACK for another message.
func (c *Client) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.reader, c.quick = nil, nil, nil
	}
}

// Close closes the connection; later Sends fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		err := c.conn.Close()
		c.conn = nil
		return err
	}
	return nil
}
