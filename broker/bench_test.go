package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// BenchmarkIngest: messages acknowledged per second, and ACK latency,
// through a listener (parse, check, store, ACK) against the two ceilings
// it sits between, in one run:
//
//	raw-mllp        an MLLP server answering a fixed ACK (no parse, no store)
//	raw-jetstream   one synchronous JetStream publish per message, the
//	                broker's durability, in process; with fsync the server
//	                syncs every write (SyncAlways)
//	raw-jetstream-tcp  the same from a client over TCP loopback, as a
//	                sending system would publish to JetStream directly
//	broker          Ingest over MLLP on loopback into embedded JetStream,
//	                with the committer serve uses (fsync: group commit)
//	broker-per-write  (fsync only) the same with the server syncing every
//	                write instead: what group commit replaced
//
// for 1 and 64 lock-step connections and durability fsync and os, with a
// 1 KB ADT. The router is not running: this is the ingest path alone.
//
//	go test ./broker -run '^$' -bench Ingest -count 6
func BenchmarkIngest(b *testing.B) {
	for _, conns := range []int{1, 64} {
		b.Run(fmt.Sprintf("raw-mllp/conns=%d", conns), func(b *testing.B) {
			srv := &mllp.Server{Handler: mllp.HandlerFunc(func(context.Context, *mllp.ConnInfo, []byte) []byte { return fixedAck })}
			benchMLLP(b, serveBench(b, srv), conns)
		})
	}
	for _, durability := range []string{"fsync", "os"} {
		for _, conns := range []int{1, 64} {
			for _, tcp := range []bool{false, true} {
				name := "raw-jetstream"
				if tcp {
					name += "-tcp"
				}
				b.Run(fmt.Sprintf("%s/%s/conns=%d", durability, name, conns), func(b *testing.B) {
					n := benchNATS(b, durability, store.EmbedOptions{PerWriteSync: true, ListenTCP: tcp})
					js := n.JetStream
					if tcp {
						js = tcpJetStream(b, n.TCPURL())
					}
					var seq atomic.Int64
					run(b, conns, func() error {
						id := strconv.FormatInt(seq.Add(1), 10)
						_, err := js.Publish(context.Background(), "hl7.in.bench.ADT.A08", benchMsg(id), jetstream.WithMsgID(id))
						return err
					})
				})
			}
			variants := map[string]bool{"broker": false}
			if durability == "fsync" {
				variants["broker-per-write"] = true
			}
			for name, perWrite := range variants {
				b.Run(fmt.Sprintf("%s/%s/conns=%d", durability, name, conns), func(b *testing.B) {
					n := benchNATS(b, durability, store.EmbedOptions{PerWriteSync: perWrite})
					l := config.ListenerConfig{Name: "bench", MaxMessageBytes: config.DefaultMaxMessageBytes}
					srv := &mllp.Server{Name: "bench", Handler: ingest.New(l, n.Committer(10*time.Second), zerolog.Nop())}
					benchMLLP(b, serveBench(b, srv), conns)
					if n.Syncer != nil {
						flushes, busy := n.Syncer.Flushes()
						b.ReportMetric(float64(b.N)/float64(max(1, flushes)), "msg/flush")
						b.ReportMetric(float64(busy.Microseconds())/float64(max(1, flushes)), "µs/flush")
					}
				})
			}
		}
	}
}

var fixedAck = []byte("MSH|^~\\&|B|B|||20260101000000||ACK^A08^ACK|1|P|2.5\rMSA|AA|1\r")

// benchMsg is a 1 KB ADT^A08 with the given control ID.
func benchMsg(id string) []byte {
	m := fmt.Sprintf("MSH|^~\\&|REG|HOSP|EMR|HOSP|20260114081530||ADT^A08^ADT_A01|%s|P|2.5.1\rEVN|A08|20260114081530\rPID|1||MRN12345^^^HOSP^MR||Doe^Jane^Q||19800101|F|||1 Main St^^Springfield^IL^62701\rPV1|1|I|W2^201^B\rNTE|1|L|", id)
	return []byte(m + strings.Repeat("x", max(0, 1023-len(m))) + "\r")
}

// benchNATS opens an embedded server.
func benchNATS(b *testing.B, durability string, eo store.EmbedOptions) *store.NATS {
	c := &config.Config{DataDir: b.TempDir(), NATS: config.NATSConfig{Durability: durability, Replicas: 1, History: time.Hour, DuplicateWindow: 2 * time.Minute}}
	n, err := store.OpenWith(context.Background(), c, eo)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Close)
	return n
}

// tcpJetStream connects a separate client over TCP.
func tcpJetStream(b *testing.B, url string) jetstream.JetStream {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return js
}

func serveBench(b *testing.B, srv *mllp.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func benchMLLP(b *testing.B, addr string, conns int) {
	clients := make(chan *mllp.Client, conns)
	for range conns {
		c := &mllp.Client{Addr: addr}
		b.Cleanup(func() { _ = c.Close() })
		clients <- c
	}
	var seq atomic.Int64
	run(b, conns, func() error {
		c := <-clients
		defer func() { clients <- c }()
		_, err := c.Send(context.Background(), benchMsg("B"+strconv.FormatInt(seq.Add(1), 10)))
		return err
	})
}

// run does b.N operations over conns goroutines, each in lock step, and
// reports msg/s and the p50 and p99 latency of one operation.
func run(b *testing.B, conns int, op func() error) {
	b.SetBytes(1024)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkRouter: inputs routed per second (HL7_IN to HL7_OUT, one route,
// one destination, no transform), draining a stored backlog, with the
// durability serve uses.
//
//	go test ./broker -run '^$' -bench Router -count 6
func BenchmarkRouter(b *testing.B) {
	for _, durability := range []string{"fsync", "os"} {
		b.Run(durability, func(b *testing.B) {
			n := benchNATS(b, durability, store.EmbedOptions{})
			ctx := context.Background()
			for i := range b.N {
				_, err := n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: "hl7.in.bench.ADT.A08", Data: benchMsg(strconv.Itoa(i)),
					Header: nats.Header{wire.HeaderListener: {"bench"}, wire.HeaderType: {"ADT"}, wire.HeaderEvent: {"A08"}}})
				if err != nil {
					b.Fatal(err)
				}
			}
			done := make(chan struct{})
			var routed atomic.Int64
			r := &routing.Router{JetStream: n.JetStream, Sync: n.Sync, Log: zerolog.Nop(),
				OnRouted: func(uint64, []string) {
					if routed.Add(1) == int64(b.N) {
						close(done)
					}
				}}
			r.SetTable(&routing.Table{Routes: []routing.Route{{Name: "all", To: []string{"emr"}}}})
			rctx, cancel := context.WithCancel(ctx)
			b.ResetTimer()
			start := time.Now()
			stopped := make(chan error, 1)
			go func() { stopped <- r.Run(rctx) }()
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-stopped
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
		})
	}
}
