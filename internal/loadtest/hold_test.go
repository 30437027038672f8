package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/require"
)

// --hold keeps every connection open, idle, after the last message: the
// receiver sees them all open once every message is answered, and bench
// returns only after the hold, with a rate that does not count it.
func TestBenchHoldsConnectionsOpen(t *testing.T) {
	srv, addr := ackServer(t, nil)

	const conns = 5
	var progress bytes.Buffer
	done := make(chan Result, 1)
	go func() {
		r, err := Bench(context.Background(), Options{Addr: addr, Connections: conns, Messages: conns, Template: "adt",
			Patients: 1, Timeout: 5 * time.Second, Hold: 2 * time.Second}, &progress)
		require.NoError(t, err)
		done <- r
	}()
	deadline := time.Now().Add(10 * time.Second)
	// A connection dials at its first message; one that got none never
	// connects. Every connection that did must still be open.
	for srv.Stats().Frames < conns {
		require.True(t, time.Now().Before(deadline), "waiting for %d answered messages: %+v", conns, srv.Stats())
		time.Sleep(10 * time.Millisecond) // polling the server's counters; the failure says what was awaited
	}
	select {
	case r := <-done:
		t.Fatalf("bench returned before its hold: %+v", r)
	default:
	}
	st := srv.Stats()
	require.Positive(t, st.Accepted)
	require.Equal(t, st.Accepted, st.Active, "every connection still open after its last message")
	r := <-done
	require.EqualValues(t, conns, r.Messages)
	require.Less(t, r.Seconds, 2.0, fmt.Sprintf("the rate does not count the hold: %v s", r.Seconds))
}

// ackServer is an MLLP receiver on 127.0.0.1 that answers AA to every
// message, after handing it to seen (if set).
func ackServer(t *testing.T, seen func(frame []byte)) (*mllp.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		m, err := hl7.Parse(frame)
		if err != nil {
			return nil
		}
		if seen != nil {
			seen(frame)
		}
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Accepted, Mode: hl7.AckModeOriginal})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ln.Addr().String()
}
