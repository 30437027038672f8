package mllp

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serve starts srv on 127.0.0.1:0 and returns its address. Cleanup
// closes it and waits for Serve to return.
func serve(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		require.ErrorIs(t, <-done, ErrServerClosed)
	})
	return l.Addr().String()
}

// echo replies "ACK:" + frame.
var echo = HandlerFunc(func(_ context.Context, _ *ConnInfo, frame []byte) []byte {
	return append([]byte("ACK:"), frame...)
})

// noLeaks fails the test if goroutines started during it are still
// running a few seconds after it (and its other cleanups) ended.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// A plain polling loop: testify's Eventually runs goroutines of its own.
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("goroutines leaked: %d before the test, %d after", before, runtime.NumGoroutine())
				return
			}
		}
	})
}
