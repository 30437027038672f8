package history

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hl7broker/hl7broker/wire"
)

// varied is message i of n as a hospital's mix sends it: 60% ADT from the
// registration system (listener adt, to emr), 30% ORU from the lab (lab,
// to emr and archive), 10% ORM from radiology (rad, to ris), patients'
// names from many origins.
var families = []string{"Nguyễn", "NGUYEN", "Müller", "Garcia", "García", "O'Brien", "Smith", "Johnson", "Kowalski", "Dubois",
	"Rossi", "Yılmaz", "Svensson", "Novák", "Papadopoulos", "Kim", "Tanaka", "Okafor", "Haddad", "Cohen"}

// variedFamily is message i's family name.
func variedFamily(i int) string { return families[(i/10)%len(families)] }

func varied(i int) (Item, string, []string) {
	typ, ev, listener, dests := "ADT", "A08", "adt", []string{"emr"}
	switch k := i % 10; {
	case k >= 6 && k <= 8:
		typ, ev, listener, dests = "ORU", "R01", "lab", []string{"emr", "archive"}
	case k == 9:
		typ, ev, listener, dests = "ORM", "O01", "rad", []string{"ris"}
	case i%7 == 0:
		ev = "A01"
	}
	family := variedFamily(i)
	ctl := fmt.Sprintf("V%09d", i)
	data := fmt.Sprintf("MSH|^~\\&|SYS|HOSP|EMR|HOSP|20261101000000||%s^%s|%s|P|2.5\rPID|1||MRN%07d^^^HOSP^MR||%s^ANNA||19800101|F\rOBR|1||ACC%08d\r",
		typ, ev, ctl, i%200_000, family, i)
	at := SyntheticStart.Add(time.Duration(i) * 300 * time.Millisecond) // 2 million: about a week
	h := nats.Header{}
	h.Set(wire.HeaderControlID, ctl)
	h.Set(wire.HeaderType, typ)
	h.Set(wire.HeaderEvent, ev)
	h.Set(wire.HeaderListener, listener)
	h.Set(wire.HeaderSendingApp, "SYS")
	h.Set(wire.HeaderSendingFac, "HOSP")
	h.Set(wire.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	return Item{Stream: wire.StreamIn, Seq: uint64(i + 1), Subject: wire.InSubject(listener, typ, ev), Header: h, Data: []byte(data), Time: at}, listener, dests
}

// variedJourneys is the events of messages [from, to) of n: received,
// routed, and then delivered, except one copy in a hundred to emr
// dead-lettered, one in fifty to ris retrying, and the newest 0.5% of
// messages still queued.
func variedJourneys(seq uint64, from, to, n int) Item {
	var b []byte
	line := func(e wire.Event) {
		j, _ := json.Marshal(e)
		b = append(append(b, j...), '\n')
	}
	for i := from; i < to; i++ {
		it, listener, dests := varied(i)
		at, id := it.Time, uint64(i+1)
		line(wire.Event{Kind: wire.EventReceived, At: at, Message: id, Listener: listener, Ack: "AA", Remote: "10.1.2.3:40000"})
		seqs := map[string]uint64{}
		for _, d := range dests {
			seqs[d] = id
		}
		line(wire.Event{Kind: wire.EventRouted, At: at.Add(time.Millisecond), Message: id, Routes: []string{listener}, Destinations: dests, OutSeqs: seqs})
		if i >= n-n/200 {
			continue // queued
		}
		for _, d := range dests {
			e := wire.Event{Kind: wire.EventDelivered, At: at.Add(2 * time.Millisecond), Message: id, Destination: d, Attempt: 1, Code: "AA"}
			switch {
			case d == "emr" && i%100 == 1:
				e = wire.Event{Kind: wire.EventDeadLettered, At: e.At, Message: id, Destination: d, Attempt: 1, Reason: "rejected: AR"}
			case d == "ris" && i%50 == 9:
				e = wire.Event{Kind: wire.EventAttempt, At: e.At, Message: id, Destination: d, Attempt: 1, Outcome: "retry", Code: "AE", Reason: "rejected: AE"}
			}
			line(e)
		}
	}
	return Item{Stream: wire.StreamEvents, Seq: seq, Subject: wire.SubjectEvents, Data: b}
}

// buildVaried indexes n varied messages, as the Indexer would.
func buildVaried(tb testing.TB, path string, n int, keys map[string]string, fold ...string) *Index {
	return buildVariedWith(tb, path, n, keys, IndexOptions{Fold: fold})
}

// buildVariedWith is buildVaried with options; with Content, each
// message's words too.
func buildVariedWith(tb testing.TB, path string, n int, keys map[string]string, o IndexOptions) *Index {
	ix, err := Open(path, keys, o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var evSeq uint64
	for from := 0; from < n; from += 1000 {
		to := min(from+1000, n)
		items := make([]Item, 0, to-from+1)
		for i := from; i < to; i++ {
			it, _, _ := varied(i)
			items = append(items, it)
			if o.Content {
				text := it
				text.Stream = StreamTexts
				items = append(items, text)
			}
		}
		evSeq++
		if err := ix.Apply(ctx, append(items, variedJourneys(evSeq, from, to, n))); err != nil {
			tb.Fatal(err)
		}
	}
	return ix
}

// BenchmarkFilters times the first page (50) of every filter the API and
// the console offer, alone and combined, over n varied messages (2
// million by default; HL7BROKER_INDEX_BENCH_N to change). The target:
// each ≤ 50 ms.
//
//	HL7BROKER_INDEX_BENCH_N=2000000 go test ./history -run '^$' -bench Filters -benchtime 1x -timeout 30m
func BenchmarkFilters(b *testing.B) {
	n := 2_000_000
	if v := benchN(); os.Getenv("HL7BROKER_INDEX_BENCH_N") != "" {
		n = v
	}
	path := filepath.Join(b.TempDir(), "history.db")
	start := time.Now()
	ix := buildVaried(b, path, n, map[string]string{"mrn": "PID-3.1", "accession": "OBR-3.1", "family": "PID-5.1"}, "family")
	defer ix.Close()
	rate := float64(n) / time.Since(start).Seconds()
	ctx := context.Background()
	last := SyntheticStart.Add(time.Duration(n) * 300 * time.Millisecond)
	d1f, d1t := last.Add(-36*time.Hour), last.Add(-12*time.Hour) // a day, ending half a day ago
	hourF, hourT := last.Add(-2*time.Hour), last.Add(-time.Hour)
	filters := []struct {
		name string
		f    Filter
	}{
		{"none", Filter{}},
		{"status_delivered", Filter{Status: StatusDelivered}},
		{"status_queued", Filter{Status: StatusQueued}},
		{"status_dead_lettered", Filter{Status: StatusDeadLettered}},
		{"status_retrying", Filter{Status: StatusRetrying}},
		{"status_purged_none", Filter{Status: StatusPurged}},
		{"type_ORM", Filter{Type: "ORM"}},
		{"type_event_ADT_A01", Filter{Type: "ADT", Event: "A01"}},
		{"listener_rad", Filter{Listener: "rad"}},
		{"listener_type_none", Filter{Listener: "lab", Type: "ADT"}},
		{"destination_ris", Filter{Destination: "ris"}},
		{"destination_status_ris_retrying", Filter{Destination: "ris", Status: StatusRetrying}},
		{"destination_status_archive_dead_none", Filter{Destination: "archive", Status: StatusDeadLettered}},
		{"day", Filter{From: d1f, To: d1t}},
		{"last_hour_but_one", Filter{From: hourF, To: hourT}},
		{"day_type_status", Filter{From: d1f, To: d1t, Type: "ORU", Status: StatusDeadLettered}},
		{"day_listener_type_none", Filter{From: d1f, To: d1t, Listener: "rad", Type: "ADT"}},
		{"status_type_queued_ORM", Filter{Status: StatusQueued, Type: "ORM"}},
		{"status_listener_dead_rad_none", Filter{Status: StatusDeadLettered, Listener: "rad"}},
		{"key_mrn", Filter{Keys: map[string]string{"mrn": "MRN0123456"}}},
		{"key_mrn_status", Filter{Keys: map[string]string{"mrn": "MRN0123456"}, Status: StatusDelivered}},
		{"key_family_folded", Filter{Keys: map[string]string{"family": "NGUYEN"}}},
		{"key_family_prefix_one_name", Filter{Keys: map[string]string{"family": "ngu*"}}},
		{"key_family_prefix_two_names", Filter{Keys: map[string]string{"family": "k*"}}},
		{"key_family_prefix_status", Filter{Keys: map[string]string{"family": "n*"}, Status: StatusDeadLettered}},
		{"key_mrn_prefix_10_values", Filter{Keys: map[string]string{"mrn": "MRN012345*"}}},
		{"key_mrn_prefix_1000_values_sorted", Filter{Keys: map[string]string{"mrn": "MRN0123*"}}},
		{"key_family_and_mrn", Filter{Keys: map[string]string{"family": "rossi", "mrn": "MRN0000100"}}},
		{"control_id", Filter{ControlID: fmt.Sprintf("V%09d", n/2)}},
		{"destination_type_day", Filter{Destination: "emr", Type: "ORU", From: d1f, To: d1t}},
	}
	b.ResetTimer()
	for range b.N {
		for _, q := range filters {
			q.f.Limit = 50
			t0 := time.Now()
			p, err := ix.Search(ctx, q.f)
			took := time.Since(t0)
			if err != nil {
				b.Fatalf("%s: %v", q.name, err)
			}
			b.ReportMetric(float64(took.Microseconds())/1000, q.name+"_ms")
			_ = p
		}
	}
	b.ReportMetric(rate, "indexed_msgs/s")
}

// BenchmarkContentSearch times the first page (50) of searches by words
// (history.content_search) over n varied messages, alone and with other
// filters, and reports what the words cost: the index's rate and size
// beside the same messages without them.
//
//	HL7BROKER_INDEX_BENCH_N=2000000 go test ./history -run '^$' -bench ContentSearch -benchtime 1x -timeout 60m
func BenchmarkContentSearch(b *testing.B) {
	n := 2_000_000
	if v := benchN(); os.Getenv("HL7BROKER_INDEX_BENCH_N") != "" {
		n = v
	}
	keys := map[string]string{"mrn": "PID-3.1", "accession": "OBR-3.1", "family": "PID-5.1"}
	size := func(path string) float64 {
		var total int64
		for _, suffix := range []string{"", "-wal"} {
			if st, err := os.Stat(path + suffix); err == nil {
				total += st.Size()
			}
		}
		return float64(total) / (1 << 20)
	}
	plainPath := filepath.Join(b.TempDir(), "plain.db")
	start := time.Now()
	buildVariedWith(b, plainPath, n, keys, IndexOptions{Fold: []string{"family"}}).Close()
	plainRate := float64(n) / time.Since(start).Seconds()
	path := filepath.Join(b.TempDir(), "history.db")
	start = time.Now()
	ix := buildVariedWith(b, path, n, keys, IndexOptions{Fold: []string{"family"}, Content: true})
	defer ix.Close()
	rate := float64(n) / time.Since(start).Seconds()
	ctx := context.Background()
	last := SyntheticStart.Add(time.Duration(n) * 300 * time.Millisecond)
	d1f, d1t := last.Add(-36*time.Hour), last.Add(-12*time.Hour)
	searches := []struct {
		name string
		f    Filter
	}{
		{"word_mrn_10_messages", Filter{Text: "MRN0123456"}},
		{"word_accession_1_message", Filter{Text: fmt.Sprintf("ACC%08d", n/3)}},
		{"word_name_5pct", Filter{Text: "rossi"}},
		{"word_in_every_message", Filter{Text: "anna"}},
		{"words_name_and_mrn", Filter{Text: "rossi MRN0000100"}},
		{"phrase", Filter{Text: `"rossi anna"`}},
		{"prefix_100_words", Filter{Text: "ACC0012*"}},
		{"word_name_status_dead", Filter{Text: "rossi", Status: StatusDeadLettered}},
		{"word_every_status_dead", Filter{Text: "anna", Status: StatusDeadLettered}},
		{"word_name_type_ORM", Filter{Text: "rossi", Type: "ORM"}},
		{"word_name_day", Filter{Text: "rossi", From: d1f, To: d1t}},
		{"word_name_destination_ris", Filter{Text: "rossi", Destination: "ris"}},
		{"word_with_key_mrn", Filter{Text: "anna", Keys: map[string]string{"mrn": "MRN0123456"}}},
		{"word_none", Filter{Text: "nosuchword"}},
	}
	b.ResetTimer()
	for range b.N {
		for _, q := range searches {
			q.f.Limit = 50
			t0 := time.Now()
			if _, err := ix.Search(ctx, q.f); err != nil {
				b.Fatalf("%s: %v", q.name, err)
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, q.name+"_ms")
		}
	}
	b.ReportMetric(rate, "indexed_msgs/s")
	b.ReportMetric(plainRate, "indexed_without_words_msgs/s")
	b.ReportMetric(size(path), "index_MB")
	b.ReportMetric(size(plainPath), "index_without_words_MB")
}
