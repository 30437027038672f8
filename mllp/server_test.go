package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerAndClientRoundTrips(t *testing.T) {
	noLeaks(t)
	var seen []string
	var mu sync.Mutex
	srv := &Server{Name: "adt", Handler: HandlerFunc(func(_ context.Context, c *ConnInfo, frame []byte) []byte {
		mu.Lock()
		seen = append(seen, c.Listener+":"+string(frame))
		mu.Unlock()
		return append([]byte("ACK:"), frame...)
	})}
	c := &Client{Addr: serve(t, srv)}
	defer c.Close()
	for i := range 5 {
		msg := fmt.Sprintf("MSH|%d", i)
		reply, err := c.Send(context.Background(), []byte(msg))
		require.NoError(t, err)
		assert.Equal(t, "ACK:"+msg, string(reply))
	}
	assert.Equal(t, []string{"adt:MSH|0", "adt:MSH|1", "adt:MSH|2", "adt:MSH|3", "adt:MSH|4"}, seen, "in order, on one listener")
	assert.EqualValues(t, 1, srv.Stats().Accepted, "one connection kept for every send")
	assert.EqualValues(t, 5, srv.Stats().Frames)
}

func TestFiveHundredConcurrentConnections(t *testing.T) {
	noLeaks(t)
	var inFlight, maxInFlight atomic.Int64
	overlap := make(chan struct{}) // closed once two frames are handled at once
	var once sync.Once
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, c *ConnInfo, frame []byte) []byte {
		n := inFlight.Add(1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		defer inFlight.Add(-1)
		if n >= 2 {
			once.Do(func() { close(overlap) })
		}
		// Until frames overlap, each handler waits a little for another
		// to arrive: on a busy machine fast handlers may never meet by
		// chance, while a server that handled connections one at a time
		// never lets them meet at all.
		select {
		case <-overlap:
		case <-time.After(50 * time.Millisecond):
		}
		return append([]byte("ACK:"), frame...)
	})}
	addr := serve(t, srv)
	const conns, perConn = 500, 4
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{Addr: addr}
			defer c.Close()
			for j := range perConn {
				msg := fmt.Sprintf("MSH|conn%d|msg%d", i, j)
				reply, err := c.Send(context.Background(), []byte(msg))
				if err != nil || string(reply) != "ACK:"+msg {
					errs <- fmt.Errorf("conn %d msg %d: %q %v", i, j, reply, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.EqualValues(t, conns*perConn, srv.Stats().Frames)
	assert.Greater(t, maxInFlight.Load(), int64(1), "connections are served concurrently")
	require.NoError(t, srv.Shutdown(context.Background()))
}

func TestConnectionLimit(t *testing.T) {
	noLeaks(t)
	srv := &Server{Handler: echo, MaxConns: 2}
	addr := serve(t, srv)
	var clients []*Client
	for range 2 {
		c := &Client{Addr: addr}
		defer c.Close()
		_, err := c.Send(context.Background(), []byte("hello"))
		require.NoError(t, err)
		clients = append(clients, c)
	}
	extra, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer extra.Close()
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = extra.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection over the limit is closed")
	assert.EqualValues(t, 1, srv.Stats().Refused)
	for _, c := range clients {
		reply, err := c.Send(context.Background(), []byte("still here"))
		require.NoError(t, err)
		assert.Equal(t, "ACK:still here", string(reply))
	}
}

func TestIdleAndSlowSenderTimeouts(t *testing.T) {
	noLeaks(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	srv := &Server{Handler: echo, IdleTimeout: 150 * time.Millisecond, ReadTimeout: 150 * time.Millisecond,
		Logger: zerolog.New(zerolog.SyncWriter(&lockedWriter{&logMu, &logs}))}
	addr := serve(t, srv)

	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("\x0bMSH|^~\\&|trick")) // a frame begun and never finished
	require.NoError(t, err)

	for _, c := range []net.Conn{idle, slow} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "the server closed it")
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	assert.Contains(t, out, "idle connection closed")
	assert.Contains(t, out, "slow sender")
	assert.NotContains(t, out, "trick", "no frame content in logs")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type rejectingHandler struct {
	Handler
	rejected chan *FrameError
}

func (h rejectingHandler) RejectMLLP(_ context.Context, _ *ConnInfo, err *FrameError) []byte {
	h.rejected <- err
	return []byte("NAK:too large")
}

func TestBadInputKeepsTheConnection(t *testing.T) {
	noLeaks(t)
	h := rejectingHandler{Handler: echo, rejected: make(chan *FrameError, 1)}
	srv := &Server{Handler: h, MaxFrameBytes: 64}
	addr := serve(t, srv)
	other := &Client{Addr: addr}
	defer other.Close()

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	big := "MSH|^~\\&|" + string(bytes.Repeat([]byte("x"), 200))
	in := "junk!" + frame(big) + frame("") + frame("MSH|ok")
	_, err = conn.Write([]byte(in))
	require.NoError(t, err)
	r := NewReader(conn)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	reply, err := r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "NAK:too large", string(reply))
	fe := <-h.rejected
	assert.Equal(t, len(big), fe.Size)
	assert.Equal(t, big[:64], string(fe.Prefix[:64]))
	reply, err = r.ReadFrame() // the empty frame gets no reply; the next one does
	require.NoError(t, err)
	assert.Equal(t, "ACK:MSH|ok", string(reply))

	reply, err = other.Send(context.Background(), []byte("other"))
	require.NoError(t, err)
	assert.Equal(t, "ACK:other", string(reply))
	st := srv.Stats()
	assert.EqualValues(t, 5, st.JunkBytes)
	assert.EqualValues(t, 1, st.RefusedFrames)
}

func TestShutdownLetsInFlightFramesFinish(t *testing.T) {
	noLeaks(t)
	started, release := make(chan struct{}), make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(_ context.Context, _ *ConnInfo, frame []byte) []byte {
		if string(frame) == "slow" {
			close(started)
			<-release
		}
		return append([]byte("ACK:"), frame...)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()

	idle := &Client{Addr: addr}
	defer idle.Close()
	_, err = idle.Send(context.Background(), []byte("hello"))
	require.NoError(t, err)

	busy := &Client{Addr: addr}
	defer busy.Close()
	replied := make(chan error, 1)
	go func() {
		reply, err := busy.Send(context.Background(), []byte("slow"))
		if err == nil && string(reply) != "ACK:slow" {
			err = fmt.Errorf("reply %q", reply)
		}
		replied <- err
	}()
	<-started
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()

	require.ErrorIs(t, <-served, ErrServerClosed, "Serve returns at once")
	require.Eventually(t, func() bool { return srv.Stats().Active == 1 }, 5*time.Second, time.Millisecond, "the idle connection is closed, the busy one kept")
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "no new connections")
	close(release)
	require.NoError(t, <-replied, "the in-flight frame got its reply")
	require.NoError(t, <-shutdown)
	_, err = idle.Send(context.Background(), []byte("again"))
	assert.Error(t, err)
}

func TestShutdownDeadlineCancelsHandlers(t *testing.T) {
	noLeaks(t)
	started, cancelled := make(chan struct{}), make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, _ *ConnInfo, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil
	})}
	c := &Client{Addr: serve(t, srv)}
	defer c.Close()
	go func() { _, _ = c.Send(context.Background(), []byte("stuck")) }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
	<-cancelled
}

func TestTLSAndMutualTLS(t *testing.T) {
	noLeaks(t)
	p := testpki.New(t)
	peer := make(chan string, 4)
	handler := HandlerFunc(func(_ context.Context, c *ConnInfo, frame []byte) []byte {
		name := "none"
		if c.TLS != nil && len(c.TLS.PeerCertificates) > 0 {
			name = c.TLS.PeerCertificates[0].Subject.CommonName
		}
		peer <- name
		return append([]byte("ACK:"), frame...)
	})

	tlsCfg, err := ServerTLSConfig(p.ServerCert, p.ServerKey, "")
	require.NoError(t, err)
	plain := &Server{Handler: handler, TLSConfig: tlsCfg}
	addr := serve(t, plain)
	cliCfg, err := ClientTLSConfig(p.CAFile, "", "", "")
	require.NoError(t, err)
	c := &Client{Addr: addr, TLSConfig: cliCfg}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte("over TLS"))
	require.NoError(t, err)
	assert.Equal(t, "ACK:over TLS", string(reply))
	assert.Equal(t, "none", <-peer)

	old := &Client{Addr: addr, TLSConfig: &tls.Config{RootCAs: cliCfg.RootCAs, MaxVersion: tls.VersionTLS11}}
	defer old.Close()
	_, err = old.Send(context.Background(), []byte("x"))
	assert.Error(t, err, "TLS 1.1 is refused")

	untrusted := &Client{Addr: addr, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	defer untrusted.Close()
	_, err = untrusted.Send(context.Background(), []byte("x"))
	assert.Error(t, err, "a client that does not trust the CA fails")

	mtlsCfg, err := ServerTLSConfig(p.ServerCert, p.ServerKey, p.CAFile)
	require.NoError(t, err)
	mtls := &Server{Handler: handler, TLSConfig: mtlsCfg}
	maddr := serve(t, mtls)
	withCert, err := ClientTLSConfig(p.CAFile, p.ClientCert, p.ClientKey, "")
	require.NoError(t, err)
	good := &Client{Addr: maddr, TLSConfig: withCert}
	defer good.Close()
	reply, err = good.Send(context.Background(), []byte("mutual"))
	require.NoError(t, err)
	assert.Equal(t, "ACK:mutual", string(reply))
	assert.Equal(t, testpki.ClientName, <-peer, "the handler sees the client certificate")

	anon := &Client{Addr: maddr, TLSConfig: cliCfg}
	defer anon.Close()
	_, err = anon.Send(context.Background(), []byte("no cert"))
	assert.Error(t, err, "mutual TLS refuses a client without a certificate")
	assert.EqualValues(t, 1, mtls.Stats().Frames)
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	noLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	first := &Server{Handler: echo}
	go func() { _ = first.Serve(l) }()
	c := &Client{Addr: addr, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	defer c.Close()
	_, err = c.Send(context.Background(), []byte("one"))
	require.NoError(t, err)

	require.NoError(t, first.Close())
	_, err = c.Send(context.Background(), []byte("two"))
	require.Error(t, err, "the server is gone")

	l2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	second := &Server{Handler: echo}
	go func() { _ = second.Serve(l2) }()
	defer second.Close()
	require.Eventually(t, func() bool {
		reply, err := c.Send(context.Background(), []byte("three"))
		return err == nil && string(reply) == "ACK:three"
	}, 5*time.Second, 5*time.Millisecond, "the client reconnects and a send succeeds")
}

// The reply timeout and a cancelled context end a round trip, with and
// without EagerReplies (whose short read deadlines must not outlast the
// round trip's own, nor undo a cancel).
func TestClientReplyTimeoutAndCancel(t *testing.T) {
	for _, eager := range []bool{false, true} {
		t.Run(fmt.Sprintf("eager=%t", eager), func(t *testing.T) { clientReplyTimeoutAndCancel(t, eager) })
	}
}

func clientReplyTimeoutAndCancel(t *testing.T, eager bool) {
	noLeaks(t)
	srv := &Server{Handler: HandlerFunc(func(_ context.Context, _ *ConnInfo, frame []byte) []byte {
		if string(frame) == "silent" {
			return nil
		}
		return append([]byte("ACK:"), frame...)
	})}
	addr := serve(t, srv)
	c := &Client{Addr: addr, ReplyTimeout: 100 * time.Millisecond, MinBackoff: time.Millisecond, EagerReplies: eager}
	defer c.Close()
	_, err := c.Send(context.Background(), []byte("silent"))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "err = %v, want a timeout", err)

	ctx, cancel := context.WithCancel(context.Background())
	c2 := &Client{Addr: addr, EagerReplies: eager}
	defer c2.Close()
	go func() {
		require.Eventually(t, func() bool { return srv.Stats().Frames >= 2 }, 5*time.Second, time.Millisecond, "waiting for %s", `srv.Stats().Frames >= 2`)
		cancel()
	}()
	_, err = c2.Send(ctx, []byte("silent"))
	assert.ErrorIs(t, err, context.Canceled)

	reply, err := c.Send(context.Background(), []byte("after"))
	require.NoError(t, err, "the client reconnects after a timeout")
	assert.Equal(t, "ACK:after", string(reply))
	require.NoError(t, c.Close())
	_, err = c.Send(context.Background(), []byte("closed"))
	assert.ErrorIs(t, err, ErrClientClosed)
}

// With EagerReplies, a reply that comes after the short read deadlines
// have all passed is read whole, and the next round trip works.
func TestEagerClientReadsASlowReply(t *testing.T) {
	noLeaks(t)
	srv := &Server{Handler: HandlerFunc(func(_ context.Context, _ *ConnInfo, frame []byte) []byte {
		if string(frame) == "slow" {
			time.Sleep(5 * time.Millisecond) // a downstream that takes its time: longer than the short deadlines
		}
		return append([]byte("ACK:"), frame...)
	})}
	addr := serve(t, srv)
	c := &Client{Addr: addr, ReplyTimeout: 10 * time.Second, EagerReplies: true}
	defer c.Close()
	for _, m := range []string{"slow", "fast", "slow"} {
		reply, err := c.Send(context.Background(), []byte(m))
		require.NoError(t, err, "send %q", m)
		assert.Equal(t, "ACK:"+m, string(reply))
	}
	assert.EqualValues(t, 1, srv.Stats().Accepted, "one connection for all three")
}

// A handler that panics on one frame closes that connection without a
// reply (the sender resends); the server and other connections go on,
// and the log has the panic but not the frame.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	srv := &Server{Name: "adt", Logger: zerolog.New(&lockedWriter{&mu, &logs}), Handler: HandlerFunc(func(_ context.Context, _ *ConnInfo, frame []byte) []byte {
		if bytes.Contains(frame, []byte("POISON")) {
			var m map[string]int
			m["x"]++ // a nil map write: a real bug, not a panic(string)
		}
		return []byte("ACK")
	})}
	addr := serve(t, srv)
	good := &Client{Addr: addr}
	defer good.Close()
	_, err := good.Send(context.Background(), []byte("MSH|1"))
	require.NoError(t, err)

	bad := &Client{Addr: addr, ReplyTimeout: 5 * time.Second}
	defer bad.Close()
	_, err = bad.Send(context.Background(), []byte("MSH|POISON-SECRET"))
	require.Error(t, err, "no reply: the connection is closed")

	reply, err := good.Send(context.Background(), []byte("MSH|2"))
	require.NoError(t, err, "the other connection goes on")
	assert.Equal(t, "ACK", string(reply))
	assert.EqualValues(t, 1, srv.Stats().Panics)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logs.String(), "handler panicked")
	assert.NotContains(t, logs.String(), "POISON-SECRET")
}

// A connection that sends bytes but never a start block is closed after
// the read timeout, even with no idle timeout, with one log line; before,
// it held its slot forever without a word.
func TestBytesWithoutStartBlockGetTheReadTimeout(t *testing.T) {
	noLeaks(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	srv := &Server{Handler: echo, ReadTimeout: 150 * time.Millisecond, Logger: zerolog.New(&lockedWriter{&mu, &logs}).Level(zerolog.InfoLevel)}
	addr := serve(t, srv)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // a port scanner, or the wrong protocol
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the server closed it")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, strings.Count(logs.String(), "\n"), "one log line: %s", logs.String())
	assert.Contains(t, logs.String(), "bytes without a start block")
}

// A sender that never reads its ACKs (it sends and sends) is cut off once
// a reply cannot be written within WriteTimeout: its replies no longer
// fill megabytes of kernel buffer first (which took 50-70 s with the 30 s
// default). It is cut off before 20,000 messages; a sender that reads its
// ACKs on another connection is answered meanwhile.
func TestSenderThatNeverReadsItsACKsIsCutOff(t *testing.T) {
	noLeaks(t)
	var handled atomic.Int64
	ack := []byte("MSH|^~\\&|BROKER|HOSP|LAB|LAB|20261206120000||ACK|1|P|2.5.1\rMSA|AA|" + strings.Repeat("0", 60) + "\r")
	srv := &Server{Handler: HandlerFunc(func(context.Context, *ConnInfo, []byte) []byte { handled.Add(1); return ack }),
		WriteTimeout: 300 * time.Millisecond}
	addr := serve(t, srv)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	frame := []byte("\x0bMSH|^~\\&|LAB|LAB|BROKER|HOSP|20261206120000||ORU^R01|1|P|2.5.1\r\x1c\r")
	var sendErr error
	sent := 0
	_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for ; sent < 1_000_000; sent++ { // until the server cuts it off, or the sender's own deadline
		if _, sendErr = conn.Write(frame); sendErr != nil {
			break
		}
	}
	require.Error(t, sendErr, "the server cut the sender off (it sent %d frames)", sent)
	assert.NotErrorIs(t, sendErr, os.ErrDeadlineExceeded, "cut off by the server, not the sender's own deadline")
	t.Logf("%d answered before the sender was cut off", handled.Load())
	assert.Less(t, handled.Load(), int64(20_000), "answered into the kernel's buffers before it was cut off")

	c := &Client{Addr: addr}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte("polite"))
	require.NoError(t, err)
	assert.Equal(t, ack, reply)
}

// Senders that start large frames and never end them cannot take more
// than the listeners' shared frame budget: past it their connections are
// closed; the budget's count stays within its bound and is all given back
// once they are gone; a sender of an ordinary message is answered all
// along, on another listener sharing the budget.
func TestFrameBudgetBoundsUnendedFramesAcrossConnections(t *testing.T) {
	noLeaks(t)
	budget := &Budget{FrameBytes: 8 << 20}
	echo := HandlerFunc(func(_ context.Context, _ *ConnInfo, f []byte) []byte { return append([]byte("ACK:"), f...) })
	big := &Server{Handler: echo, MaxFrameBytes: 4 << 20, Budget: budget, ReadTimeout: 2 * time.Second}
	small := &Server{Handler: echo, Budget: budget}
	bigAddr, smallAddr := serve(t, big), serve(t, small)

	chunk := append([]byte{StartBlock}, bytes.Repeat([]byte("x"), 3<<20)...) // 3 MB, no end block
	closed := make(chan bool, 10)
	for range 10 {
		go func() {
			conn, err := net.Dial("tcp", bigAddr)
			if err != nil {
				closed <- false
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(chunk); err != nil {
				closed <- true
				return
			}
			_, err = conn.Read(make([]byte, 1)) // the server's close, or our deadline
			closed <- err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
		}()
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if used := budget.FrameBytesUsed(); used > budget.FrameBytes {
			return fmt.Errorf("over the budget: %d", used)
		}
		if s := big.Stats(); s.RefusedFrames < 8 {
			return fmt.Errorf("%d of at least 8 unended frames refused (budget used %d)", s.RefusedFrames, budget.FrameBytesUsed())
		}
		return nil
	})
	assert.LessOrEqual(t, budget.FrameBytesUsed(), budget.FrameBytes)

	c := &Client{Addr: smallAddr}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte("MSH|^~\\&|ordinary"))
	require.NoError(t, err, "an ordinary message gets through while the budget is full")
	assert.Equal(t, "ACK:MSH|^~\\&|ordinary", string(reply))

	cut := 0
	for range 10 {
		if <-closed {
			cut++
		}
	}
	assert.GreaterOrEqual(t, cut, 8, "the connections over the budget were closed by the server")
	c.Close()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if used := budget.FrameBytesUsed(); used != 0 {
			return fmt.Errorf("%d bytes still charged after every connection closed", used)
		}
		return nil
	})
}

// The connections of all servers sharing a budget are bounded together
// (the file descriptors left after the broker's reserve): one more is
// closed on arrival and counted as refused; once one closes, a new one
// is taken.
func TestConnectionBudgetIsSharedByServers(t *testing.T) {
	noLeaks(t)
	budget := &Budget{Conns: 2}
	echo := HandlerFunc(func(_ context.Context, _ *ConnInfo, f []byte) []byte { return f })
	a, b := &Server{Handler: echo, Budget: budget}, &Server{Handler: echo, Budget: budget}
	addrA, addrB := serve(t, a), serve(t, b)
	ca, cb := &Client{Addr: addrA}, &Client{Addr: addrB}
	for _, c := range []*Client{ca, cb} {
		_, err := c.Send(context.Background(), []byte("x"))
		require.NoError(t, err)
	}
	third, err := net.Dial("tcp", addrA)
	require.NoError(t, err)
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = third.Read(make([]byte, 1))
	require.Error(t, err)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "closed on arrival by the server")
	assert.EqualValues(t, 1, a.Stats().Refused)
	assert.EqualValues(t, 2, budget.ConnsOpen())

	cb.Close()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n := budget.ConnsOpen(); n != 1 {
			return fmt.Errorf("%d connections counted, waiting for 1", n)
		}
		return nil
	})
	c := &Client{Addr: addrB}
	defer c.Close()
	_, err = c.Send(context.Background(), []byte("y"))
	require.NoError(t, err, "a connection is taken again once one closed")
	ca.Close()
}
