package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ConnInfo describes the connection a frame came in on.
type ConnInfo struct {
	Listener   string               // Server.Name
	ID         uint64               // unique within the Server, for logs
	RemoteAddr net.Addr             // the sender
	TLS        *tls.ConnectionState // nil without TLS; PeerCertificates with mutual TLS
}

// Handler answers frames. ServeMLLP is called once per frame, in order,
// one at a time per connection: the next frame on that connection is not
// read until it returns. It returns the reply frame's message, or nil for
// no reply. frame is valid only during the call. ctx is cancelled when
// the connection is closed by force (Shutdown's deadline passed).
type Handler interface {
	ServeMLLP(ctx context.Context, conn *ConnInfo, frame []byte) []byte
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, conn *ConnInfo, frame []byte) []byte

// ServeMLLP calls f.
func (f HandlerFunc) ServeMLLP(ctx context.Context, conn *ConnInfo, frame []byte) []byte {
	return f(ctx, conn, frame)
}

// RejectHandler may be implemented by a Handler to answer a frame the
// reader refused (over MaxFrameBytes, or a bad end), for example with a
// negative acknowledgement built from err.Prefix. Without it such frames
// are logged and dropped; either way the connection goes on.
type RejectHandler interface {
	RejectMLLP(ctx context.Context, conn *ConnInfo, err *FrameError) []byte
}

// Defaults for zero Server fields.
const (
	DefaultAddr         = ":2575"
	DefaultReadTimeout  = 60 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or Close.
var ErrServerClosed = errors.New("mllp: server closed")

// Server accepts MLLP connections and hands each frame to Handler. Its
// zero value, with a Handler, serves on DefaultAddr with no connection
// limit, 1 MiB frames, a 60 s per-frame read timeout, no idle timeout and
// a 30 s write timeout.
type Server struct {
	Addr      string      // TCP address for ListenAndServe; DefaultAddr when empty
	Name      string      // the listener's name, in ConnInfo and logs
	Handler   Handler     // required
	TLSConfig *tls.Config // TLS (1.2 at least) when set; mutual TLS with ClientAuth and ClientCAs

	MaxConns       int  // connections at once; more are closed on arrival. 0: no limit
	MaxFrameBytes  int  // 0: DefaultMaxFrameBytes
	AllowMissingCR bool // accept frames ended by 0x1C without 0x0D
	// Budget, if set, is shared with other servers: the frames being
	// received and the connections of all of them together are bounded.
	Budget *Budget

	// ReadTimeout limits reading one frame, from its start block, so a
	// sender trickling bytes is cut off. 0: DefaultReadTimeout; <0: none.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection with no frame for that long. 0: none,
	// since MLLP senders keep connections open between messages.
	IdleTimeout time.Duration
	// WriteTimeout limits writing a reply. 0: DefaultWriteTimeout; <0: none.
	WriteTimeout time.Duration

	Logger zerolog.Logger // the zero Logger logs nothing

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*serverConn]struct{}
	inShutdown atomic.Bool
	nextID     atomic.Uint64
	stats      counters
}

// Stats are counts since the Server started.
type Stats struct {
	Accepted      int64 // connections accepted
	Refused       int64 // connections closed on arrival at MaxConns
	Active        int64 // connections open now
	Frames        int64 // frames handed to the Handler
	RefusedFrames int64 // frames the reader refused
	JunkBytes     int64 // bytes discarded outside frames
	Panics        int64 // handler panics recovered (each closed its connection)
}

type counters struct {
	accepted, refused, active, frames, refusedFrames, junk, panics atomic.Int64
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	return Stats{s.stats.accepted.Load(), s.stats.refused.Load(), s.stats.active.Load(),
		s.stats.frames.Load(), s.stats.refusedFrames.Load(), s.stats.junk.Load(), s.stats.panics.Load()}
}

// ListenAndServe listens on s.Addr and serves.
func (s *Server) ListenAndServe() error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Shutdown or Close, and returns
// ErrServerClosed then. l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	if s.Handler == nil {
		return errors.New("mllp: Server.Handler is nil")
	}
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
		l = tls.NewListener(l, cfg)
	}
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	defer l.Close()

	var backoff time.Duration
	for {
		rwc, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Logger.Warn().Str("listener", s.Name).Err(err).Dur("retry_in", backoff).Msg("accept failed")
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.stats.accepted.Add(1)
		c := &serverConn{srv: s, rwc: rwc, info: ConnInfo{Listener: s.Name, ID: s.nextID.Add(1), RemoteAddr: rwc.RemoteAddr()}}
		if !s.Budget.takeConn() {
			s.stats.refused.Add(1)
			s.Logger.Warn().Str("listener", s.Name).Str("remote", rwc.RemoteAddr().String()).Int64("max_conns", s.Budget.Conns).
				Msg("connection refused: the connections of all listeners reached their bound (file descriptors are kept for storage and admin)")
			rwc.Close()
			continue
		}
		if !s.trackConn(c, true) {
			s.Budget.giveConn()
			s.stats.refused.Add(1)
			s.Logger.Warn().Str("listener", s.Name).Str("remote", rwc.RemoteAddr().String()).Int("max_conns", s.MaxConns).
				Msg("connection refused: connection limit reached")
			rwc.Close()
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

// trackConn adds or removes c; adding fails at MaxConns or in shutdown.
func (s *Server) trackConn(c *serverConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	if !add {
		delete(s.conns, c)
		s.stats.active.Store(int64(len(s.conns)))
		return true
	}
	if s.inShutdown.Load() || (s.MaxConns > 0 && len(s.conns) >= s.MaxConns) {
		return false
	}
	s.conns[c] = struct{}{}
	s.stats.active.Store(int64(len(s.conns)))
	return true
}

// Shutdown stops accepting, closes connections that are waiting for a
// frame, lets every frame being handled finish and its reply be written,
// then returns. If ctx ends first, it closes the remaining connections
// (their handlers' contexts are cancelled) and returns ctx.Err(). A frame
// only partly received is dropped: its sender got no reply and resends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.closeListeners()
	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if s.closeIdleConns() {
			return nil
		}
		select {
		case <-ctx.Done():
			s.closeAllConns()
			return ctx.Err()
		case <-timer.C:
			wait = min(2*wait, 50*time.Millisecond)
			timer.Reset(wait)
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.closeListeners()
	s.closeAllConns()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		(*l).Close()
	}
}

// closeIdleConns closes connections not handling a frame and reports
// whether none are left.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	return len(s.conns) == 0
}

func (s *Server) closeAllConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.forceClose()
	}
}
