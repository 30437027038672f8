package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The janitor purges a destination's copies up to the ack floor it noted
// a duplicate window ago: never one not yet acknowledged, nor one
// acknowledged less than a window ago.
func TestJanitorPurgesWhatWasDeliveredAWindowAgo(t *testing.T) {
	n := openTestStore(t)
	ctx := context.Background()
	for i := range 5 {
		_, err := n.JetStream.Publish(ctx, "hl7.out.emr", []byte("copy "+strconv.Itoa(i)))
		require.NoError(t, err)
	}
	_, err := n.JetStream.Publish(ctx, "hl7.out.lab", []byte("another destination's copy"))
	require.NoError(t, err)
	cons, err := n.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamOut, jetstream.ConsumerConfig{
		Durable: "deliver-emr", FilterSubject: "hl7.out.emr", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = n.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamOut, jetstream.ConsumerConfig{
		Durable: "deliver-lab", FilterSubject: "hl7.out.lab", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	ack := func(k int) {
		batch, err := cons.Fetch(k, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			require.NoError(t, m.DoubleAck(ctx))
			got++
		}
		require.Equal(t, k, got)
	}
	left := func() uint64 {
		s, err := n.JetStream.Stream(ctx, wire.StreamOut)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}

	window := time.Minute
	j := NewJanitor(n.JetStream, window, zerolog.Nop())
	t0 := time.Now()
	ack(3)
	require.NoError(t, j.tick(ctx, t0))
	assert.EqualValues(t, 6, left(), "nothing purged before a window has passed")
	ack(1) // the 4th, after the floor was noted
	require.NoError(t, j.tick(ctx, t0.Add(window/2)))
	require.NoError(t, j.tick(ctx, t0.Add(window)))
	assert.EqualValues(t, 3, left(), "the three acknowledged a window ago are purged; the 4th, the 5th and lab's copy stay")
	require.NoError(t, j.tick(ctx, t0.Add(window*3/2)))
	assert.EqualValues(t, 2, left(), "the 4th, noted half a window later, goes half a window later")
	require.NoError(t, j.tick(ctx, t0.Add(3*window)))
	assert.EqualValues(t, 2, left(), "the unacknowledged 5th and lab's copy are never purged")

	depth := QueueDepth(n.JetStream, "emr")
	assert.EqualValues(t, 1, depth, "queue depth counts what is not delivered")
}

// An HL7_OUT made as a work queue by an earlier version stays one: a
// stream's retention cannot change.
func TestOldWorkQueueOutStreamIsKept(t *testing.T) {
	c := testkit.Config(t)
	n, err := Open(context.Background(), c)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, n.JetStream.DeleteStream(ctx, wire.StreamOut))
	_, err = n.JetStream.CreateStream(ctx, jetstream.StreamConfig{Name: wire.StreamOut, Subjects: []string{wire.SubjectOut + ".>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	n.Close()
	n2, err := Open(ctx, c)
	require.NoError(t, err, "opening over an old work-queue HL7_OUT")
	defer n2.Close()
	s, err := n2.JetStream.Stream(ctx, wire.StreamOut)
	require.NoError(t, err)
	assert.Equal(t, jetstream.WorkQueuePolicy, s.CachedInfo().Config.Retention)
	assert.Equal(t, min(c.NATS.DuplicateWindow, RouterHorizon), s.CachedInfo().Config.Duplicates, "the rest of the config is applied")
}
