package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// When copies cannot be stored, the router holds the line: once storage
// is back every input is routed once, in stored order.
func TestRouterHoldsTheLineWhileCopiesCannotBeStored(t *testing.T) {
	c := testConfig(t)
	n, err := OpenNATS(context.Background(), c)
	require.NoError(t, err)
	defer n.Close()
	ctx := context.Background()
	require.NoError(t, n.JetStream.DeleteStream(ctx, StreamOut)) // the real failure: no stream answers

	var logs syncbuf.Buffer
	routedCount := make(chan uint64, 100)
	r := &routing.Router{JetStream: n.JetStream, Sync: n.Sync, Log: zerolog.New(&logs),
		OnRouted: func(seq uint64, _ []string) { routedCount <- seq }}
	r.SetTable(&routing.Table{Routes: []routing.Route{{Name: "all", To: []string{"emr"}}}})
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(rctx) }()
	defer func() { cancel(); <-stopped }()

	const inputs = 20
	for i := range inputs {
		_, err := n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: "hl7.in.adt.ADT.A01", Data: []byte(adt),
			Header: nats.Header{HeaderListener: {"adt"}, HeaderType: {"ADT"}, HeaderEvent: {"A01"}, HeaderControlID: {"C" + strconv.Itoa(i)}}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "storing the copy failed; retrying") }, 10*time.Second, 10*time.Millisecond)
	assert.Empty(t, routedCount, "nothing is acked while its copy is not stored")

	require.NoError(t, n.ensureStreams(ctx, c)) // storage is back
	var acked []uint64
	for len(acked) < inputs {
		select {
		case seq := <-routedCount:
			acked = append(acked, seq)
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d inputs routed", len(acked), inputs)
		}
	}
	s, err := n.JetStream.Stream(ctx, StreamOut)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var order []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		order = append(order, m.Header.Get(HeaderControlID))
	}
	want := make([]string, inputs)
	for i := range want {
		want[i] = "C" + strconv.Itoa(i)
	}
	assert.Equal(t, want, order, "each copy once, in stored order")
}
