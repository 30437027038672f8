package history

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A broker killed after its queue acknowledged a copy and before the
// journey event was recorded left the index saying "queued" for ever.
// Reconcile rebuilds the lost event from the queue's ack floor (and
// HL7_DLQ): the copy then reads delivered (or dead-lettered), marked as
// recovered; a copy the queue has not acknowledged stays queued.
func TestReconcileRebuildsJourneyEventsLostInACrash(t *testing.T) {
	ctx := context.Background()
	n, err := store.Open(ctx, testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	events := store.NewEventLog(n.JetStream, zerolog.Nop())
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	go events.Run(ectx)
	startIndexer(t, n, ix)
	ops := &Ops{JetStream: n.JetStream, Index: ix, Events: events}

	// Three messages routed to emr; its queue delivers (acks) the first
	// two, the second by way of the dead-letter queue; their events are lost.
	var ids []uint64
	for i := range 3 {
		id, e := storeMessage(t, n, i)
		events.Record(e)
		h := nats.Header{}
		h.Set(wire.HeaderInSeq, fmt.Sprint(id))
		out, err := n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: wire.OutSubject("emr"), Header: h, Data: []byte("MSH|^~\\&|x\r")})
		require.NoError(t, err)
		events.Record(wire.Event{Kind: wire.EventRouted, At: time.Now(), Message: id, Destinations: []string{"emr"},
			OutSeqs: map[string]uint64{"emr": out.Sequence}})
		ids = append(ids, id)
	}
	dh := nats.Header{}
	dh.Set(wire.HeaderInSeq, fmt.Sprint(ids[1]))
	dh.Set(wire.HeaderDLQReason, "rejected: AR")
	dh.Set(wire.HeaderDLQAttempts, "1")
	_, err = n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: wire.SubjectDLQ + ".emr", Header: dh, Data: []byte("MSH|^~\\&|x\r")})
	require.NoError(t, err)
	cons, err := n.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamOut, jetstream.ConsumerConfig{Durable: wire.DeliveryConsumer("emr"),
		FilterSubject: wire.OutSubject("emr"), AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(2)
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		for _, id := range ids {
			d, err := ix.Message(ctx, id)
			if err != nil || d.Status != StatusQueued {
				return fmt.Errorf("message %d: waiting for status queued (%v %v)", id, d.Status, err)
			}
		}
		if p, _ := ix.DeadLetters(ctx, DLQFilter{}); len(p.Items) != 1 {
			return fmt.Errorf("waiting for the dead letter in the index")
		}
		return nil
	})

	got, err := ops.Reconcile(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, got, "the two copies the queue acknowledged")
	testkit.WaitFor(t, 10*time.Second, func() error {
		want := map[uint64]string{ids[0]: StatusDelivered, ids[1]: StatusDeadLettered, ids[2]: StatusQueued}
		for id, status := range want {
			d, err := ix.Message(ctx, id)
			if err != nil || d.Status != status {
				return fmt.Errorf("message %d: %s, waiting for %s (%v)", id, d.Status, status, err)
			}
		}
		return nil
	})
	d, err := ix.Message(ctx, ids[0])
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(d.Journey[len(d.Journey)-1]), "recovered"), "the rebuilt event says so")
	again, err := ops.Reconcile(ctx, 0)
	require.NoError(t, err)
	assert.Zero(t, again, "nothing left to rebuild")
}
