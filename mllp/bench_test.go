package mllp

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/interop"
)

// The raw-MLLP ceiling: round trips per second on loopback with a trivial
// handler that returns a fixed ACK, for 1 and 64 lock-step connections
// and 1 KB messages; python-hl7's asyncio server, answering the same fixed
// ACK, is measured by the same client in the same run. Run:
//
//	go test ./mllp -run '^$' -bench RoundTrip -count 6

var fixedAck = []byte("MSH|^~\\&|PY|PY|||20260101000000||ACK^A01^ACK|1|P|2.5\rMSA|AA|1\r")

// oneKB is a 1,024-byte ADT message.
var oneKB = func() []byte {
	m := []byte("MSH|^~\\&|REG|HOSP|EMR|HOSP|20260114081530||ADT^A08^ADT_A01|BENCH0001|P|2.5.1\rEVN|A08|20260114081530\rPID|1||MRN12345^^^HOSP^MR||Doe^Jane^Q||19800101|F|||1 Main St^^Springfield^IL^62701\rPV1|1|I|W2^201^B\r")
	m = append(m, "NTE|1|L|"...)
	m = append(m, bytes.Repeat([]byte("x"), 1024-len(m)-1)...)
	return append(m, '\r')
}()

func BenchmarkRoundTrip(b *testing.B) {
	goAddr := func(b *testing.B) string {
		srv := &Server{Handler: HandlerFunc(func(context.Context, *ConnInfo, []byte) []byte { return fixedAck })}
		return serve(b, srv)
	}
	pyAddr := func(b *testing.B) string { return interop.StartPythonServer(b, "fixed") }
	for _, server := range []struct {
		name  string
		start func(*testing.B) string
	}{{"go", goAddr}, {"python-hl7", pyAddr}} {
		for _, conns := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/conns=%d", server.name, conns), func(b *testing.B) {
				benchRoundTrips(b, server.start(b), conns)
			})
		}
	}
}

func benchRoundTrips(b *testing.B, addr string, conns int) {
	clients := make([]*Client, conns)
	for i := range clients {
		clients[i] = &Client{Addr: addr, ReplyTimeout: 30 * time.Second}
		defer clients[i].Close()
		if _, err := clients[i].Send(context.Background(), oneKB); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(oneKB)))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := c.Send(context.Background(), oneKB); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// One queue's connection (one message on the wire at a time) while 64
// other connections keep the cores busy, with and without EagerReplies:
// how often the queue's goroutine gets its reply in time. Run:
//
//	go test ./mllp -run '^$' -bench QueueLane -count 6
func BenchmarkQueueLaneUnderLoad(b *testing.B) {
	srv := &Server{Handler: HandlerFunc(func(context.Context, *ConnInfo, []byte) []byte { return fixedAck })}
	addr := serve(b, srv)
	for _, eager := range []bool{false, true} {
		b.Run(fmt.Sprintf("eager=%t", eager), func(b *testing.B) {
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var others atomic.Int64
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &Client{Addr: addr, ReplyTimeout: 30 * time.Second}
					defer c.Close()
					for ctx.Err() == nil {
						if _, err := c.Send(ctx, oneKB); err == nil {
							others.Add(1)
						}
					}
				}()
			}
			lane := &Client{Addr: addr, ReplyTimeout: 30 * time.Second, EagerReplies: eager}
			defer lane.Close()
			b.ResetTimer()
			start, before := time.Now(), others.Load()
			for range b.N {
				if _, err := lane.Send(context.Background(), oneKB); err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/took.Seconds(), "lane-msg/s")
			b.ReportMetric(float64(others.Load()-before)/took.Seconds(), "others-msg/s")
			stop()
			wg.Wait()
		})
	}
}
