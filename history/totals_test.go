package history

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/wire"
)

// Totals count each message, copy and refusal once, whichever way its
// records and events reach the index (together, events first, events in
// a later batch), however often they are applied again (after a crash),
// and across a reopen; a reset counts again what the streams still hold.
func TestTotalsCountEachThingOnceAndSurviveAReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	ix, err := OpenIndex(path, map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	refused := wire.Event{Kind: wire.EventRefused, At: t0, Listener: "lab", Ack: "AR", Code: "207", Reason: "no MSH-10"}
	batches := [][]Item{
		// 1: record and whole journey together: delivered after one failed attempt.
		{record(1, t0), eventsRecord(t, 1, received(1, t0), routed(1, ms(1), "emr", "archive"),
			attempt(1, ms(2), "emr", 1), wire.Event{Kind: wire.EventDelivered, At: ms(3), Message: 1, Destination: "emr", Attempt: 2, Code: "AA"},
			delivered(1, ms(3), "archive"), refused)},
		// 2: events before the record; 3: events in a later batch than the record.
		{eventsRecord(t, 2, routed(2, ms(1), "emr"), attempt(2, ms(2), "emr", 1)), record(3, t0)},
		{record(2, t0), eventsRecord(t, 3, routed(3, ms(1), "emr"), attempt(2, ms(3), "emr", 2), attempt(2, ms(4), "emr", 3),
			wire.Event{Kind: wire.EventDeadLettered, At: ms(5), Message: 2, Destination: "emr", Attempt: 3, Reason: "rejected: AE", DLQ: 1})},
		{eventsRecord(t, 4, delivered(3, ms(2), "emr"))},
	}
	want := Totals{
		"received":      {"lab": 3},
		"refused":       {"lab": 1},
		"delivered":     {"emr": 2, "archive": 1},
		"dead_lettered": {"emr": 1},
		"failed":        {"emr": 4}, // message 1's first attempt, message 2's three
	}
	for _, b := range batches {
		require.NoError(t, ix.Apply(ctx, b))
	}
	got, err := ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// After a crash the streams are read again: every batch applied again.
	for _, b := range batches {
		require.NoError(t, ix.Apply(ctx, b))
	}
	got, err = ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got, "applying again counts nothing twice")

	require.NoError(t, ix.Close())
	ix, err = OpenIndex(path, map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	got, err = ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got, "a reopened index keeps its totals")

	// A replayed copy delivered again counts again: it was delivered twice.
	require.NoError(t, ix.Apply(ctx, []Item{eventsRecord(t, 5,
		wire.Event{Kind: wire.EventReplayed, At: ms(10), Message: 2, Destination: "emr", DLQ: 1, By: "alice"},
		wire.Event{Kind: wire.EventDelivered, At: ms(11), Message: 2, Destination: "emr", Attempt: 1, Code: "AA"})}))
	got, err = ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), got.Get("delivered", "emr"))
	require.Equal(t, uint64(4), got.Get("failed", "emr"), "the delivery after the replay failed nothing")

	// A reset reads the streams again from the start.
	require.NoError(t, ix.Reset(ctx))
	got, err = ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, Totals{"refused": {"lab": 1}}, got, "after a reset only the refusals, which stay, are counted")
	for _, b := range batches {
		require.NoError(t, ix.Apply(ctx, b))
	}
	got, err = ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// An index made by a version without totals is counted once when this
// version opens it, from the rows it holds.
func TestTotalsOfAnOlderIndexAreCountedFromItsRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	ix, err := OpenIndex(path, map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	require.NoError(t, ix.Apply(ctx, []Item{record(1, t0), record(2, t0), eventsRecord(t, 1, received(1, t0), routed(1, t0, "emr"),
		attempt(1, t0.Add(time.Millisecond), "emr", 1), attempt(1, t0.Add(2*time.Millisecond), "emr", 2))}))
	// As an older version left it: no totals, no triggers.
	_, err = ix.w.Exec(`DROP TABLE totals; DROP TRIGGER totals_received; DROP TRIGGER totals_received_late; DROP TRIGGER totals_copy;
		DROP TRIGGER totals_copy_moved; DROP TRIGGER totals_refused; DELETE FROM meta WHERE k = 'totals'`)
	require.NoError(t, err)
	require.NoError(t, ix.Close())
	ix, err = OpenIndex(path, map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	got, err := ix.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, Totals{"received": {"lab": 2}, "failed": {"emr": 2}}, got)
}
