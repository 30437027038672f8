package history

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func openTestIndex(t *testing.T) *Index {
	t.Helper()
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return ix
}

// record is message id as HL7_IN stores it, stored at `at`.
func record(id int, at time.Time) Item {
	it := synthetic(id - 1)
	it.Time = at
	it.Header.Set(wire.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	return it
}

// eventsRecord is one HL7_EVENTS record holding events.
func eventsRecord(t *testing.T, seq uint64, events ...wire.Event) Item {
	t.Helper()
	var data []byte
	for _, e := range events {
		line, err := json.Marshal(e)
		require.NoError(t, err)
		data = append(append(data, line...), '\n')
	}
	return Item{Stream: wire.StreamEvents, Seq: seq, Subject: wire.SubjectEvents, Data: data}
}

func received(id uint64, at time.Time) wire.Event {
	return wire.Event{Kind: wire.EventReceived, At: at, Message: id, Listener: "lab", Ack: "AA"}
}

func routed(id uint64, at time.Time, dests ...string) wire.Event {
	seqs := map[string]uint64{}
	for i, d := range dests {
		seqs[d] = id*10 + uint64(i)
	}
	return wire.Event{Kind: wire.EventRouted, At: at, Message: id, Routes: []string{"all"}, Destinations: dests, OutSeqs: seqs, Unrouted: len(dests) == 0}
}

func delivered(id uint64, at time.Time, dest string) wire.Event {
	return wire.Event{Kind: wire.EventDelivered, At: at, Message: id, Destination: dest, Attempt: 1, Code: "AA"}
}

func attempt(id uint64, at time.Time, dest string, n int) wire.Event {
	return wire.Event{Kind: wire.EventAttempt, At: at, Message: id, Destination: dest, Attempt: n, Outcome: "retry", Code: "AE", Reason: "rejected: AE"}
}

func detail(t *testing.T, ix *Index, id uint64) Detail {
	t.Helper()
	d, err := ix.Message(context.Background(), id)
	require.NoError(t, err)
	return d
}

func kinds(d Detail) []string {
	var out []string
	for _, raw := range d.Journey {
		var e wire.Event
		if json.Unmarshal(raw, &e) == nil {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestApplyMessageAndJourneyInOneBatch(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	require.NoError(t, ix.Apply(ctx, []Item{
		eventsRecord(t, 1, received(1, t0), routed(1, t0.Add(time.Millisecond), "emr", "lis"),
			delivered(1, t0.Add(2*time.Millisecond), "emr"), attempt(1, t0.Add(3*time.Millisecond), "lis", 1)),
		record(1, t0), // the record after its events: order in a batch does not matter
	}))
	d := detail(t, ix, 1)
	require.Equal(t, StatusRetrying, d.Status, "one copy delivered, one retrying")
	require.Len(t, d.Copies, 2)
	require.Equal(t, "emr", d.Copies[0].Destination)
	require.Equal(t, StatusDelivered, d.Copies[0].Status)
	require.Equal(t, uint64(10), d.Copies[0].OutSeq)
	require.Equal(t, StatusRetrying, d.Copies[1].Status)
	require.Equal(t, "AE", d.Copies[1].Code)
	require.Equal(t, []string{"received", "routed", "delivered", "attempt"}, kinds(d))

	page, err := ix.Search(ctx, Filter{Keys: map[string]string{"mrn": "MRN0000000"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "found by its search key")
}

// The index keeps, per copy, what its latest attempt sent and got back,
// whatever order the attempts' events come in and however often; the
// journey it shows holds none of it.
func TestApplyKeepsWhatTheLatestAttemptSentAndGotBack(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	first := attempt(1, t0.Add(2*time.Millisecond), "web", 1)
	first.Sent, first.Response = []byte(`{"try":1}`), []byte("HTTP 503 Service Unavailable\n\nbusy")
	second := delivered(1, t0.Add(3*time.Millisecond), "web")
	second.Attempt, second.Sent, second.Response = 2, []byte(`{"try":2}`), []byte("HTTP 201 Created\n\n{}")
	big := delivered(1, t0.Add(2*time.Millisecond), "files")
	big.Sent, big.SentSize, big.SentName = []byte("MSH|start"), 400000, "/out/1.hl7"
	items := []Item{record(1, t0), eventsRecord(t, 1, received(1, t0), routed(1, t0.Add(time.Millisecond), "web", "files")),
		eventsRecord(t, 2, second, big), eventsRecord(t, 3, first)} // the later attempt's event first
	require.NoError(t, ix.Apply(ctx, items))
	require.NoError(t, ix.Apply(ctx, items[2:]), "applied again")
	sent, err := ix.sent(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, `{"try":2}`, string(sent["web"].payload))
	assert.Equal(t, "HTTP 201 Created\n\n{}", string(sent["web"].response))
	assert.Equal(t, sentRow{payload: []byte("MSH|start"), name: "/out/1.hl7", size: 400000}, sent["files"])
	d := detail(t, ix, 1)
	journey, _ := json.Marshal(d.Journey)
	assert.NotContains(t, string(journey), `"sent":`)
	assert.NotContains(t, string(journey), `"response":`)
	assert.Contains(t, string(journey), `"sent_name":"/out/1.hl7"`)
}

func TestApplyEventsBeforeTheirMessage(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 1, received(2, t0), routed(2, t0.Add(time.Millisecond), "emr"))}))
	_, err := ix.Message(ctx, 2)
	require.ErrorIs(t, err, ErrNotFound, "a message is not shown before its record is indexed")
	require.NoError(t, ix.Apply(ctx, []Item{record(2, t0), eventsRecord(t, 2, delivered(2, t0.Add(2*time.Millisecond), "emr"))}))
	d := detail(t, ix, 2)
	require.Equal(t, StatusDelivered, d.Status)
	require.Equal(t, "CTL00000001", d.ControlID)
	require.Equal(t, []string{"received", "routed", "delivered"}, kinds(d))
}

func TestApplyEventsOutOfOrder(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	require.NoError(t, ix.Apply(ctx, []Item{record(3, t0), eventsRecord(t, 1, received(3, t0), routed(3, t0.Add(time.Millisecond), "emr"))}))
	// Another broker's delivered event came first; its older attempt
	// event (stored later) must not move the copy back to retrying.
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 2, delivered(3, t0.Add(5*time.Millisecond), "emr"))}))
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 3, attempt(3, t0.Add(3*time.Millisecond), "emr", 1))}))
	// The input routed again after a crash: the copy stays delivered.
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 4, routed(3, t0.Add(9*time.Millisecond), "emr"))}))
	d := detail(t, ix, 3)
	require.Equal(t, StatusDelivered, d.Status)
	require.Equal(t, StatusDelivered, d.Copies[0].Status)
	require.Equal(t, 1, d.Copies[0].Attempts)
	require.Equal(t, []string{"received", "routed", "attempt", "delivered", "routed"}, kinds(d), "the journey is in time order")

	// The same in one batch.
	require.NoError(t, ix.Apply(ctx, []Item{record(30, t0), eventsRecord(t, 5, routed(30, t0, "emr"),
		delivered(30, t0.Add(5*time.Millisecond), "emr"), attempt(30, t0.Add(3*time.Millisecond), "emr", 1))}))
	require.Equal(t, StatusDelivered, detail(t, ix, 30).Status)
}

// Events of messages indexed in an earlier batch that only set copies'
// statuses are written many a statement (more than bulkRows here), and
// each message's status is still worked out from all its copies.
func TestApplyLateEventsInBulk(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	const n = 3*bulkRows + 5
	var first, late []wire.Event
	var records []Item
	for id := uint64(1); id <= n; id++ {
		records = append(records, record(int(id), t0))
		dests := []string{"emr"}
		if id%2 == 0 {
			dests = append(dests, "lis") // lis: still queued
		}
		first = append(first, received(id, t0), routed(id, t0.Add(time.Millisecond), dests...))
		if id%10 == 0 {
			late = append(late, wire.Event{Kind: wire.EventDeadLettered, At: t0.Add(2 * time.Millisecond), Message: id, Destination: "emr", Attempt: 1, Reason: "rejected: AR"})
		} else {
			late = append(late, delivered(id, t0.Add(2*time.Millisecond), "emr"))
		}
	}
	require.NoError(t, ix.Apply(ctx, append(records, eventsRecord(t, 1, first...))))
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 2, late...)}))
	for id := uint64(1); id <= n; id++ {
		d := detail(t, ix, id)
		want := StatusDelivered
		switch {
		case id%10 == 0:
			want = StatusDeadLettered
		case id%2 == 0:
			want = StatusQueued
		}
		require.Equal(t, want, d.Status, "message %d", id)
		require.Equal(t, []string{"received", "routed", late[id-1].Kind}, kinds(d), "message %d", id)
		require.Equal(t, "emr", d.Copies[0].Destination)
		require.Equal(t, 1, d.Copies[0].Attempts, "message %d", id)
	}
}

// Routed events that come in a batch after their message's record (the
// usual case while the index is behind) are written in bulk too: the
// routed flag, the copies (queued, or the status a delivery event in the
// same batch gave), the journey and the status are as if they had come
// with the record, and applying that batch again changes nothing.
func TestApplyRoutedEventsLateInBulk(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	const n = 3*bulkRows + 5
	var records []Item
	var first, late []wire.Event
	want := map[uint64]string{}
	for id := uint64(1); id <= n; id++ {
		records = append(records, record(int(id), t0))
		first = append(first, received(id, t0))
		at := t0.Add(time.Millisecond)
		switch id % 4 {
		case 0: // no route matched
			late = append(late, routed(id, at))
			want[id] = StatusUnrouted
		case 1: // a route matched, its filter kept nothing
			late = append(late, wire.Event{Kind: wire.EventRouted, At: at, Message: id, Routes: []string{"adt"}})
			want[id] = StatusFiltered
		case 2: // two copies, one delivered in the same batch
			late = append(late, routed(id, at, "emr", "lis"), delivered(id, at.Add(time.Millisecond), "emr"))
			want[id] = StatusQueued
		case 3: // one copy, delivered
			late = append(late, routed(id, at, "emr"), delivered(id, at.Add(time.Millisecond), "emr"))
			want[id] = StatusDelivered
		}
	}
	require.NoError(t, ix.Apply(ctx, append(records, eventsRecord(t, 1, first...))))
	for id := uint64(1); id <= n; id++ {
		require.Equal(t, StatusReceived, detail(t, ix, id).Status)
	}
	check := func() {
		t.Helper()
		for id := uint64(1); id <= n; id++ {
			d := detail(t, ix, id)
			require.Equal(t, want[id], d.Status, "message %d", id)
			wantKinds := []string{"received", "routed"}
			if id%4 >= 2 {
				wantKinds = append(wantKinds, "delivered")
			}
			require.Equal(t, wantKinds, kinds(d), "message %d", id)
			switch id % 4 {
			case 2:
				require.Len(t, d.Copies, 2, "message %d", id)
				byDest := map[string]Copy{d.Copies[0].Destination: d.Copies[0], d.Copies[1].Destination: d.Copies[1]}
				require.Equal(t, StatusDelivered, byDest["emr"].Status)
				require.Equal(t, StatusQueued, byDest["lis"].Status)
				require.Equal(t, id*10, byDest["emr"].OutSeq)
				require.Equal(t, id*10+1, byDest["lis"].OutSeq)
			case 3:
				require.Len(t, d.Copies, 1, "message %d", id)
				require.Equal(t, StatusDelivered, d.Copies[0].Status)
				require.Equal(t, id*10, d.Copies[0].OutSeq)
			default:
				require.Empty(t, d.Copies, "message %d", id)
			}
		}
	}
	second := eventsRecord(t, 2, late...)
	require.NoError(t, ix.Apply(ctx, []Item{second}))
	check()
	require.NoError(t, ix.Apply(ctx, []Item{second}), "the same batch again, as after a crash")
	check()
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	items := []Item{record(4, t0), eventsRecord(t, 1, received(4, t0), routed(4, t0.Add(time.Millisecond), "emr"),
		attempt(4, t0.Add(2*time.Millisecond), "emr", 1), delivered(4, t0.Add(3*time.Millisecond), "emr"))}
	require.NoError(t, ix.Apply(ctx, items))
	first := detail(t, ix, 4)
	// After a crash the streams are read again from the positions
	// written: the same records, applied again.
	require.NoError(t, ix.Apply(ctx, []Item{items[1]}))
	require.NoError(t, ix.Apply(ctx, items))
	again := detail(t, ix, 4)
	require.Equal(t, first, again)
	require.Len(t, again.Journey, 4, "no event twice")
}

func TestApplyStatuses(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	require.NoError(t, ix.Apply(ctx, []Item{
		record(5, t0), record(6, t0), record(7, t0), record(8, t0),
		eventsRecord(t, 1,
			routed(5, t0), // no route matched
			wire.Event{Kind: wire.EventRouted, At: t0, Message: 6, Routes: []string{"adt"}}, // matched, no copy
			wire.Event{Kind: wire.EventDeadLettered, At: t0, Message: 7, Destination: wire.TransformDLQ, Reason: "transform failed"},
		),
	}))
	for id, want := range map[uint64]string{5: StatusUnrouted, 6: StatusFiltered, 7: StatusDeadLettered, 8: StatusReceived} {
		require.Equal(t, want, detail(t, ix, id).Status, "message %d", id)
	}
}

func TestApplyPurgeWithItsLetterInOneBatch(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	h := nats.Header{}
	h.Set(wire.HeaderInSeq, "9")
	h.Set(wire.HeaderDLQReason, "rejected: AR")
	letter := Item{Stream: wire.StreamDLQ, Seq: 1, Subject: wire.SubjectDLQ + ".emr", Header: h, Time: t0}
	require.NoError(t, ix.Apply(ctx, []Item{
		record(9, t0),
		eventsRecord(t, 1, routed(9, t0, "emr"), wire.Event{Kind: wire.EventDeadLettered, At: t0.Add(time.Millisecond), Message: 9, Destination: "emr", DLQ: 1}),
		eventsRecord(t, 2, wire.Event{Kind: wire.EventPurged, At: t0.Add(time.Second), Message: 9, Destination: "emr", DLQ: 1, By: "ops"}),
		letter, // stored before the purge, read after it
	}))
	page, err := ix.DeadLetters(ctx, DLQFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Items, "a purged letter is not listed")
	require.Equal(t, StatusPurged, detail(t, ix, 9).Status)
}

func TestIndexerHoldsAYoungMessageUntilItsJourneyIsComplete(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, ix.apply(ctx, []Item{record(1, now), eventsRecord(t, 1, received(1, now), routed(1, now, "emr"))}, now))
	_, err := ix.Message(ctx, 1)
	require.ErrorIs(t, err, ErrNotFound, "held: its copy is still on its way")
	require.Equal(t, 1, ix.heldCount())
	pos, err := ix.Positions(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(0), pos[wire.StreamIn], "the position stops before what is held")
	require.Equal(t, uint64(0), pos[wire.StreamEvents])

	require.NoError(t, ix.apply(ctx, []Item{eventsRecord(t, 2, delivered(1, now.Add(time.Millisecond), "emr"))}, now.Add(10*time.Millisecond)))
	require.Equal(t, 0, ix.heldCount())
	d := detail(t, ix, 1)
	require.Equal(t, StatusDelivered, d.Status)
	require.Len(t, d.Journey, 3)
	pos, err = ix.Positions(ctx)
	require.NoError(t, err)
	require.Equal(t, Positions{wire.StreamIn: 1, wire.StreamEvents: 2}, pos)

	// A message whose delivery takes longer is written when holdFor has
	// passed, queued, and updated when its delivery comes.
	require.NoError(t, ix.apply(ctx, []Item{record(2, now), eventsRecord(t, 3, routed(2, now, "emr"))}, now))
	require.Equal(t, 1, ix.heldCount())
	require.NoError(t, ix.apply(ctx, nil, now.Add(holdFor)))
	require.Equal(t, 0, ix.heldCount())
	require.Equal(t, StatusQueued, detail(t, ix, 2).Status)
	require.NoError(t, ix.apply(ctx, []Item{eventsRecord(t, 4, delivered(2, now.Add(time.Second), "emr"))}, now.Add(time.Second)))
	require.Equal(t, StatusDelivered, detail(t, ix, 2).Status)
}

func TestPruneFollowsTheStreams(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	var items []Item
	for id := 1; id <= 10; id++ {
		d := delivered(uint64(id), t0.Add(time.Millisecond), "emr")
		d.Response = []byte("MSA|AA")
		items = append(items, record(id, t0), eventsRecord(t, uint64(id), received(uint64(id), t0), routed(uint64(id), t0, "emr"), d))
	}
	require.NoError(t, ix.Apply(ctx, items))
	require.NoError(t, ix.Prune(ctx, 6, 1, 1))
	for id := uint64(1); id <= 10; id++ {
		_, err := ix.Message(ctx, id)
		if id < 6 {
			require.ErrorIs(t, err, ErrNotFound, "message %d is gone from HL7_IN", id)
		} else {
			require.NoError(t, err, "message %d", id)
		}
	}
	var n int
	for _, table := range []string{"keys", "dests", "journeys", "sent"} {
		require.NoError(t, ix.r.QueryRow("SELECT count(*) FROM "+table+" WHERE message < 6").Scan(&n))
		require.Zero(t, n, "%s of pruned messages", table)
	}
	require.NoError(t, ix.r.QueryRow("SELECT count(*) FROM sent").Scan(&n))
	require.Equal(t, 5, n, "what the kept messages' copies sent stays")
	page, err := ix.Search(ctx, Filter{Keys: map[string]string{"mrn": "MRN0000000"}})
	require.NoError(t, err)
	require.Empty(t, page.Items)
}
