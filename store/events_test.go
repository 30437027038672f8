package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// readEvents reads every event stored in HL7_EVENTS, in order.
func readEvents(t *testing.T, n *NATS) []wire.Event { return testkit.ReadEvents(t, n.JetStream) }

// Events are stored in batches of at most eventBatch, in the order they
// were recorded, and what is queued when Run stops is stored too.
func TestEventLogStoresEveryEventInBatches(t *testing.T) {
	n := openTestStore(t)
	l := NewEventLog(n.JetStream, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	const total = 2*eventBatch + 100
	for i := 1; i <= total; i++ {
		l.Record(wire.Event{Kind: wire.EventDelivered, Message: uint64(i), Destination: "emr", Attempt: 1})
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if got := len(readEvents(t, n)); got != total {
			return fmt.Errorf("%d of %d events stored", got, total)
		}
		return nil
	})
	require.GreaterOrEqual(t, l.Batches(), uint64(3), "at most eventBatch events a record")

	l.Record(wire.Event{Kind: wire.EventDelivered, Message: total + 1})
	cancel()
	require.NoError(t, <-done)
	events := readEvents(t, n)
	require.Len(t, events, total+1, "what was queued when Run stopped is stored")
	for i, e := range events {
		require.Equal(t, uint64(i+1), e.Message, "in the order recorded")
		require.False(t, e.At.IsZero(), "Record sets the time")
	}
	require.Zero(t, l.Dropped())
}

// Payloads as sent travel with their events, bounded: a batch closes
// early when its bytes would strain max_payload, and past
// eventContentQueued waiting bytes an event goes without its payload
// (saying so), never without its journey.
func TestEventLogBoundsThePayloadsItCarries(t *testing.T) {
	n := openTestStore(t)
	l := NewEventLog(n.JetStream, zerolog.Nop())
	l.contentBudget = 2 << 20 // 16 payloads: light enough for the race detector
	payload := make([]byte, wire.SentKept)
	for i := range payload {
		payload[i] = byte('A' + i%26)
	}
	const total = 200 // 200 × 128 KiB waiting: more than the budget
	for i := 1; i <= total; i++ {
		l.Record(wire.Event{Kind: wire.EventDelivered, Message: uint64(i), Destination: "web", Attempt: 1, Sent: payload, Response: []byte("HTTP 200 OK")})
	}
	kept := l.contentBudget / (wire.SentKept + len("HTTP 200 OK"))
	require.Equal(t, uint64(total-kept), l.Unkept(), "events past the bound go without their payload")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	testkit.WaitFor(t, 30*time.Second, func() error {
		if got := len(readEvents(t, n)); got != total {
			return fmt.Errorf("%d of %d events stored", got, total)
		}
		return nil
	})
	cancel()
	require.NoError(t, <-done)
	events := readEvents(t, n)
	for i, e := range events {
		require.Equal(t, uint64(i+1), e.Message, "every event, in order")
		if i < kept {
			require.Equal(t, payload, e.Sent, "event %d kept its payload", i+1)
		} else {
			require.Empty(t, e.Sent, "event %d", i+1)
			require.Equal(t, wire.SentUnkept, e.SentSize, "event %d says its payload was not kept", i+1)
		}
	}
	require.GreaterOrEqual(t, l.Batches(), uint64(kept*wire.SentKept*4/3/eventBatchBytes), "batches closed by their bytes")
	require.Zero(t, l.Dropped())
}
