package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// benchN is how many messages BenchmarkIndexMillion indexes
// (HL7BROKER_INDEX_BENCH_N, default 1,000,000).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("HL7BROKER_INDEX_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// buildIndex indexes n synthetic messages with their journeys.
func buildIndex(tb testing.TB, path string, n int) *Index {
	ix, err := BuildSynthetic(path, n)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}

// benchIndex is an empty index for a benchmark, closed at its end, and a
// context that can end, as the Indexer's does.
func benchIndex(b *testing.B) (*Index, context.Context) {
	ix, err := OpenIndex(filepath.Join(b.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ix, ctx
}

// BenchmarkApply is the index's cost a message, as the broker pays it:
// each batch holds perBatch messages and their journeys (the Indexer
// gathers 100 ms: 100 messages a batch at 1,000 msg/s).
//
//	go test ./history -run '^$' -bench Apply -benchtime 50000x
func BenchmarkApply(b *testing.B) {
	for _, perBatch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", perBatch), func(b *testing.B) {
			ix, ctx := benchIndex(b)
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

// BenchmarkApplyLate is BenchmarkApply with the destination behind: each
// batch holds perBatch new messages with their received and routed
// events, and the delivered events of the previous batch's messages,
// which were indexed already (the general path: upserts and a status
// recomputed). This is the index's cost while a queue has a backlog.
//
//	go test ./history -run '^$' -bench ApplyLate -benchtime 50000x
func BenchmarkApplyLate(b *testing.B) {
	benchLate(b, []string{wire.EventReceived, wire.EventRouted}, []string{wire.EventDelivered, wire.EventDeadLettered})
}

// BenchmarkApplyRoutedLate is BenchmarkApplyLate with the index behind
// the router too: each batch holds perBatch new messages with only their
// received events, the routed events of the previous batch's messages,
// and the delivered events of the batch's before that. This is the
// index's cost while many senders keep the cores busy.
//
//	go test ./history -run '^$' -bench ApplyRoutedLate -benchtime 50000x
func BenchmarkApplyRoutedLate(b *testing.B) {
	benchLate(b, []string{wire.EventReceived}, []string{wire.EventRouted}, []string{wire.EventDelivered, wire.EventDeadLettered})
}

// benchLate applies batches of 1,000 new messages each, with the events
// of kinds[k] of the messages of k batches before.
func benchLate(b *testing.B, kinds ...[]string) {
	const perBatch = 1000
	ix, ctx := benchIndex(b)
	var batches [][]Item
	evSeq := uint64(0)
	for from := 0; from < b.N; from += perBatch {
		to := min(from+perBatch, b.N)
		items := make([]Item, 0, to-from+len(kinds))
		for i := from; i < to; i++ {
			items = append(items, synthetic(i))
		}
		for back, ks := range kinds {
			if lo := from - back*perBatch; lo >= 0 {
				evSeq++
				items = append(items, onlyEvents(journeyBatch(evSeq, lo, min(lo+perBatch, b.N)), ks...))
			}
		}
		batches = append(batches, items)
	}
	b.ResetTimer()
	for _, items := range batches {
		if err := ix.Apply(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
}

// onlyEvents keeps the events of an HL7_EVENTS record that are of kinds.
func onlyEvents(it Item, kinds ...string) Item {
	var out []byte
	for line := range bytes.Lines(it.Data) {
		var e wire.Event
		if json.Unmarshal(line, &e) == nil && slices.Contains(kinds, e.Kind) {
			out = append(out, line...)
		}
	}
	it.Data = out
	return it
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
		{"page_type_time_status", Filter{Type: "ORU", Status: StatusDeadLettered, From: SyntheticStart.Add(time.Duration(mid) * 10 * time.Millisecond),
			To: SyntheticStart.Add(time.Duration(mid)*10*time.Millisecond + 24*time.Hour), Limit: 50}, func(p Page) bool { return len(p.Items) > 0 }},
		{"page_type_time", Filter{Type: "ADT", From: SyntheticStart, To: SyntheticStart.Add(24 * time.Hour), Limit: 50}, func(p Page) bool { return len(p.Items) == 50 }},
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
