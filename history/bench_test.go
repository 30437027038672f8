package history

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
