package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
)

// A group kept in progress is not handed out again past its ack wait;
// once stopped, it is.
func TestKeepInProgressHoldsAGroupPastItsAckWait(t *testing.T) {
	ctx := context.Background()
	n, err := store.Open(ctx, testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	_, err = n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: "hl7.in.adt.ADT.A01", Data: []byte(testkit.ADT)})
	require.NoError(t, err)
	cons, err := n.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamIn, jetstream.ConsumerConfig{
		Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second})
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var group []jetstream.Msg
	for m := range batch.Messages() {
		group = append(group, m)
	}
	require.Len(t, group, 1)

	stop := store.KeepInProgress(group, 300*time.Millisecond)
	// Three ack waits pass: the message must stay with its holder.
	again, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
	require.NoError(t, err)
	for range again.Messages() {
		t.Fatal("handed out again while kept in progress")
	}
	stop()
	again, err = cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	got := 0
	for range again.Messages() {
		got++
	}
	require.Equal(t, 1, got, "handed out again once no longer kept in progress")
}
