package history

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

// benchN is how many messages BenchmarkIndexMillion indexes
// (HL7BROKER_INDEX_BENCH_N, default 1,000,000).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("HL7BROKER_INDEX_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

var benchBase = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// synthetic is message i as HL7_IN stores it: ADT and ORU, 200,000
// patients, one every 10 ms of received time.
func synthetic(i int) Item {
	typ, ev := "ADT", "A08"
	if i%3 == 0 {
		typ, ev = "ORU", "R01"
	}
	ctl := fmt.Sprintf("CTL%08d", i)
	data := fmt.Sprintf("MSH|^~\\&|LAB|HOSP|EMR|HOSP|20261101000000||%s^%s|%s|P|2.5\rPID|1||MRN%07d^^^HOSP^MR||DOE^JANE||19800101|F\rOBR|1||ACC%08d\r",
		typ, ev, ctl, i%200_000, i)
	at := benchBase.Add(time.Duration(i) * 10 * time.Millisecond)
	h := nats.Header{}
	h.Set(wire.HeaderControlID, ctl)
	h.Set(wire.HeaderType, typ)
	h.Set(wire.HeaderEvent, ev)
	h.Set(wire.HeaderListener, "lab")
	h.Set(wire.HeaderSendingApp, "LAB")
	h.Set(wire.HeaderSendingFac, "HOSP")
	h.Set(wire.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	return Item{Stream: wire.StreamIn, Seq: uint64(i + 1), Subject: wire.InSubject("lab", typ, ev), Header: h, Data: []byte(data), Time: at}
}

// journeyBatch is the events of messages [from, to): received, routed to
// emr, and delivered (one in a hundred dead-lettered), as one HL7_EVENTS
// record.
func journeyBatch(seq uint64, from, to int) Item {
	var b []byte
	for i := from; i < to; i++ {
		at := benchBase.Add(time.Duration(i) * 10 * time.Millisecond)
		id := uint64(i + 1)
		rc, _ := json.Marshal(wire.Event{Kind: wire.EventReceived, At: at, Message: id, Listener: "lab", Ack: "AA", Remote: "127.0.0.1:40000"})
		b = append(append(b, rc...), '\n')
		r, _ := json.Marshal(wire.Event{Kind: wire.EventRouted, At: at.Add(time.Millisecond), Message: id, Routes: []string{"all"},
			Destinations: []string{"emr"}, OutSeqs: map[string]uint64{"emr": id}})
		d := wire.Event{Kind: wire.EventDelivered, At: at.Add(2 * time.Millisecond), Message: id, Destination: "emr", Attempt: 1, Outcome: "delivered", Code: "AA"}
		if i%100 == 0 {
			d = wire.Event{Kind: wire.EventDeadLettered, At: at.Add(2 * time.Millisecond), Message: id, Destination: "emr", Attempt: 1, Reason: "rejected: AR"}
		}
		e, _ := json.Marshal(d)
		b = append(append(append(append(b, r...), '\n'), e...), '\n')
	}
	return Item{Stream: wire.StreamEvents, Seq: seq, Subject: wire.SubjectEvents, Data: b}
}

// buildIndex indexes n synthetic messages with their journeys, as the
// Indexer would (batches of indexBatch records).
func buildIndex(tb testing.TB, path string, n int) *Index {
	ix, err := OpenIndex(path, map[string]string{"mrn": "PID-3.1", "accession": "OBR-3.1"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	const perBatch = 1000
	var evSeq uint64
	for from := 0; from < n; from += perBatch {
		to := min(from+perBatch, n)
		items := make([]Item, 0, to-from+1)
		for i := from; i < to; i++ {
			items = append(items, synthetic(i))
		}
		evSeq++
		items = append(items, journeyBatch(evSeq, from, to))
		if err := ix.Apply(ctx, items); err != nil {
			tb.Fatal(err)
		}
	}
	return ix
}

// BenchmarkApply is the index's cost a message, as the broker pays it:
// each batch holds perBatch messages and their journeys (the Indexer
// gathers 100 ms: 100 messages a batch at 1,000 msg/s).
//
//	go test ./history -run '^$' -bench Apply -benchtime 50000x
func BenchmarkApply(b *testing.B) {
	for _, perBatch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", perBatch), func(b *testing.B) {
			ix, err := OpenIndex(filepath.Join(b.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"})
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			ctx := context.Background()
			batches := make([][]Item, 0, b.N/perBatch+1)
			for from := 0; from < b.N; from += perBatch {
				to := min(from+perBatch, b.N)
				items := make([]Item, 0, to-from+1)
				for i := from; i < to; i++ {
					items = append(items, synthetic(i))
				}
				batches = append(batches, append(items, journeyBatch(uint64(len(batches)+1), from, to)))
			}
			b.ResetTimer()
			for _, items := range batches {
				if err := ix.Apply(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIndexMillion builds an index of a million messages (about two
// minutes here), then times the lookups the admin API makes: one message
// by control ID, one by a search key, and a filtered page (type + a day's
// time range + status). The targets: under 50 ms, 50 ms and 200 ms.
//
//	go test ./history -run '^$' -bench IndexMillion -benchtime 1x
func BenchmarkIndexMillion(b *testing.B) {
	n := benchN()
	path := filepath.Join(b.TempDir(), "history.db")
	start := time.Now()
	ix := buildIndex(b, path, n)
	defer ix.Close()
	build := time.Since(start)
	st, _ := os.Stat(path)
	ctx := context.Background()
	mid := n / 2
	queries := []struct {
		name string
		f    Filter
		want func(Page) bool
	}{
		{"control_id", Filter{ControlID: fmt.Sprintf("CTL%08d", mid)}, func(p Page) bool { return len(p.Items) == 1 }},
		{"key_mrn", Filter{Keys: map[string]string{"mrn": fmt.Sprintf("MRN%07d", mid%200_000)}}, func(p Page) bool { return len(p.Items) >= 1 }},
		{"page_type_time_status", Filter{Type: "ORU", Status: StatusDeadLettered, From: benchBase.Add(time.Duration(mid) * 10 * time.Millisecond),
			To: benchBase.Add(time.Duration(mid)*10*time.Millisecond + 24*time.Hour), Limit: 50}, func(p Page) bool { return len(p.Items) > 0 }},
		{"page_type_time", Filter{Type: "ADT", From: benchBase, To: benchBase.Add(24 * time.Hour), Limit: 50}, func(p Page) bool { return len(p.Items) == 50 }},
	}
	b.ResetTimer()
	for range b.N {
		for _, q := range queries {
			t0 := time.Now()
			p, err := ix.Search(ctx, q.f)
			took := time.Since(t0)
			if err != nil || !q.want(p) {
				b.Fatalf("%s: %v, %d items", q.name, err, len(p.Items))
			}
			b.ReportMetric(float64(took.Microseconds())/1000, q.name+"_ms")
		}
		t0 := time.Now()
		if _, err := ix.Message(ctx, uint64(mid)); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "detail_ms")
	}
	b.ReportMetric(float64(n)/build.Seconds(), "indexed_msgs/s")
	b.ReportMetric(float64(st.Size())/(1<<20), "file_MB")
}
