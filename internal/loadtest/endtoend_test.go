package loadtest

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/require"
)

// A receiver that acknowledges at once and forwards to the sink only once
// everything was sent: bench reports the backlog growing while it sends,
// nothing delivered during the load, and the drain after it.
func TestBenchReportsQueueAndEndToEndRate(t *testing.T) {
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sinkAddr := sinkLn.Addr().String()
	require.NoError(t, sinkLn.Close()) // bench's sink listens there

	const total = 240
	held := make(chan []byte, total)
	srv, addr := ackServer(t, func(frame []byte) { held <- append([]byte(nil), frame...) })
	forwarded := make(chan error, 1)
	go func() {
		c := &mllp.Client{Addr: sinkAddr, ReplyTimeout: 5 * time.Second}
		defer c.Close()
		for i := range total {
			frame := <-held
			if i == 0 {
				// Hold everything until bench has stopped sending: every
				// message answered and its connections closed.
				for st := srv.Stats(); len(held) < total-1 || st.Accepted < 2 || st.Active > 0; st = srv.Stats() {
					time.Sleep(10 * time.Millisecond) // polling counts; bench's wait bounds it
				}
			}
			// The last frame's ACK may be cut off: bench closes its sink as
			// soon as that frame arrives (Delivered below checks it did).
			if _, err := c.Send(context.Background(), frame); err != nil && i < total-1 {
				forwarded <- err
				return
			}
		}
		forwarded <- nil
	}()

	var progress bytes.Buffer
	r, err := Bench(context.Background(), Options{Addr: addr, Connections: 2, Messages: total, Rate: 160, Template: "adt",
		Patients: 10, Timeout: 5 * time.Second, Sink: sinkAddr, SinkWait: 20 * time.Second, Progress: 500 * time.Millisecond}, &progress)
	require.NoError(t, err)
	require.NoError(t, <-forwarded)
	s := r.Sink
	require.NotNil(t, s)
	require.EqualValues(t, total, s.Delivered, "everything forwarded arrived")
	require.Zero(t, s.DuringLoad, "nothing was forwarded while bench sent")
	require.Positive(t, s.DrainSeconds, "the drain after sending")
	require.Positive(t, s.EndToEndPerSecond)
	require.Less(t, s.EndToEndPerSecond, r.PerSecond, "end to end counts the drain too")
	require.GreaterOrEqual(t, s.MaxQueued, int64(100), "the backlog at a sample during the 1.5 s of sending")
	require.NotEmpty(t, s.Queue)
	require.Equal(t, s.Queue[0].Acked, s.Queue[0].Queued, "at the first sample all that was acked waited")
	require.Contains(t, progress.String(), "delivered 0  queued ", "progress lines show the backlog")

	var out bytes.Buffer
	Print(&out, r, false)
	require.Contains(t, out.String(), "end to end: ")
	require.Contains(t, out.String(), "queue over time (s:queued): 1s:")
}
