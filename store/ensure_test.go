package store

import (
	"context"
	"github.com/nats-io/nats.go"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openTestStore is an embedded store in a temporary folder, closed when
// the test ends.
func openTestStore(t *testing.T) *NATS {
	t.Helper()
	n, err := Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}

// A queue whose consumer has another ack policy (an ordered queue made by
// an older hl7broker, or a destination switched to parallel delivery) is
// made again from its ack floor: what was acknowledged is not handed out
// again, what was handed out but not acknowledged is, and nothing is
// skipped. A second call with the same policy keeps the consumer's state.
func TestEnsureConsumerChangesTheAckPolicyFromTheAckFloor(t *testing.T) {
	n := openTestStore(t)
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		_, err := n.JetStream.Publish(ctx, "hl7.out.emr", []byte(strconv.Itoa(i)))
		require.NoError(t, err)
		_, err = n.JetStream.Publish(ctx, "hl7.out.lab", []byte("another destination's copy"))
		require.NoError(t, err)
	}
	cfg := jetstream.ConsumerConfig{Durable: "deliver-emr", FilterSubject: "hl7.out.emr", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 100, AckWait: 30 * time.Second}
	cons, remade, _, err := EnsureConsumer(ctx, n.JetStream, wire.StreamOut, cfg)
	require.NoError(t, err)
	require.False(t, remade)
	// Three acknowledged, two more handed out and not.
	next := func(cons jetstream.Consumer, k int, ack bool) []string {
		batch, err := cons.Fetch(k, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		var got []string
		for m := range batch.Messages() {
			got = append(got, string(m.Data()))
			if ack {
				require.NoError(t, m.DoubleAck(ctx))
			}
		}
		return got
	}
	require.Equal(t, []string{"1", "2", "3"}, next(cons, 3, true))
	require.Equal(t, []string{"4", "5"}, next(cons, 2, false))

	cfg.AckPolicy = jetstream.AckAllPolicy
	cons, remade, unacked, err := EnsureConsumer(ctx, n.JetStream, wire.StreamOut, cfg)
	require.NoError(t, err)
	require.True(t, remade)
	require.Equal(t, 2, unacked, "4 and 5 were handed out, not acknowledged")
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.AckAllPolicy, info.Config.AckPolicy)
	require.Equal(t, []string{"4", "5", "6"}, next(cons, 3, false), "from the old ack floor on")
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	m := <-batch.Messages()
	require.Equal(t, "7", string(m.Data()))
	require.NoError(t, m.DoubleAck(ctx), "acknowledges 4 to 7 at once")

	// The same policy again (a restart): the consumer and its state stay.
	cons, remade, _, err = EnsureConsumer(ctx, n.JetStream, wire.StreamOut, cfg)
	require.NoError(t, err)
	require.False(t, remade)
	info, err = cons.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending, "4 to 7 acknowledged together")
	require.Equal(t, []string{"8", "9", "10"}, next(cons, 3, true))

	// And back to explicit acks: nothing left to hand out.
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	cons, remade, _, err = EnsureConsumer(ctx, n.JetStream, wire.StreamOut, cfg)
	require.NoError(t, err)
	require.True(t, remade)
	info, err = cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.AckExplicitPolicy, info.Config.AckPolicy)
	require.Zero(t, info.NumPending+uint64(info.NumAckPending), "every message was acknowledged before the change")
}

// A broker that starts beside others, or again, updates no stream whose
// config it would not change (another broker's update while a consumer
// is made is a data race inside nats-server), and still updates one whose
// config changed. The server announces each update on the advisory
// subject, in order: the first announcement after the unchanged call is
// the changed call's.
func TestEnsureStreamsUpdatesOnlyWhatChanged(t *testing.T) {
	c := testkit.Config(t)
	n, err := Open(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	ctx := context.Background()
	updated := make(chan string, 16)
	sub, err := n.Conn.Subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED.>", func(m *nats.Msg) {
		updated <- m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, n.Conn.Flush())

	require.NoError(t, n.EnsureStreams(ctx, c), "again, unchanged")
	c.History.DLQMaxAge = 90 * 24 * time.Hour
	require.NoError(t, n.EnsureStreams(ctx, c), "with the dead-letter queue's age changed")
	select {
	case name := <-updated:
		assert.Equal(t, wire.StreamDLQ, name, "the first stream updated is the one whose config changed")
	case <-time.After(10 * time.Second):
		t.Fatal("no stream update was announced for the changed dead-letter queue")
	}
	s, err := n.JetStream.Stream(ctx, wire.StreamDLQ)
	require.NoError(t, err)
	assert.Equal(t, 90*24*time.Hour, s.CachedInfo().Config.MaxAge)
	assert.Empty(t, updated, "no other stream was updated")
}
