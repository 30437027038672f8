package mllp

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A context whose deadline ends a read is also the connection's deadline:
// the read can fail, and the client drop its connection, before the
// context's callback runs. That callback must not touch the dropped
// connection (it used to read c.conn and panic on nil).
func TestClientContextDeadlineRacesTheRead(t *testing.T) {
	noLeaks(t)
	srv := &Server{Handler: HandlerFunc(func(context.Context, *ConnInfo, []byte) []byte { return nil })} // never answers
	addr := serve(t, srv)
	c := &Client{Addr: addr, MinBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
	defer c.Close()
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Microsecond)
		_, err := c.Send(ctx, []byte("silent"))
		cancel()
		assert.Error(t, err)
	}
}

// A receiver that restarts closes the client's idle connection. The next
// message must not be written to it (lost with it, and an attempt spent
// on "EOF"): the client sees the close before writing and dials anew, so
// the message gets through at the first Send, once.
func TestClientRedialsAConnectionTheReceiverClosedWithoutSpendingASend(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[tlsOn], func(t *testing.T) {
			var ln net.Listener
			var err error
			var clientTLS *tls.Config
			if tlsOn {
				p := testpki.New(t)
				serverTLS, serr := ServerTLSConfig(p.ServerCert, p.ServerKey, "")
				require.NoError(t, serr)
				clientTLS, err = ClientTLSConfig(p.CAFile, "", "", "")
				require.NoError(t, err)
				ln, err = tls.Listen("tcp", "127.0.0.1:0", serverTLS)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			require.NoError(t, err)
			defer ln.Close()
			received := make(chan string, 10)
			closed := make(chan struct{}, 10)
			go func() { // one message a connection, then the receiver "restarts"
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					r := NewReader(conn)
					if msg, err := r.ReadFrame(); err == nil {
						received <- string(msg)
						_ = WriteFrame(conn, []byte("MSA|AA|"+string(msg)))
					}
					conn.Close()
					closed <- struct{}{}
				}
			}()
			c := &Client{Addr: ln.Addr().String(), TLSConfig: clientTLS}
			defer c.Close()
			for i, id := range []string{"M1", "M2", "M3"} {
				reply, err := c.Send(context.Background(), []byte(id))
				require.NoError(t, err, "message %d: the first Send gets through", i+1)
				assert.Equal(t, "MSA|AA|"+id, string(reply))
				<-closed
			}
			assert.Equal(t, []string{"M1", "M2", "M3"}, []string{<-received, <-received, <-received}, "each once")
			assert.Empty(t, received)
		})
	}
}
