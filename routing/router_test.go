package routing_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// When copies cannot be stored, the router holds the line: once storage
// is back every input is routed once, in stored order.
func TestRouterHoldsTheLineWhileCopiesCannotBeStored(t *testing.T) {
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	defer n.Close()
	ctx := context.Background()
	require.NoError(t, n.JetStream.DeleteStream(ctx, wire.StreamOut)) // the real failure: no stream answers

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
		_, err := n.JetStream.PublishMsg(ctx, &nats.Msg{Subject: "hl7.in.adt.ADT.A01", Data: []byte(testkit.ADT),
			Header: nats.Header{wire.HeaderListener: {"adt"}, wire.HeaderType: {"ADT"}, wire.HeaderEvent: {"A01"}, wire.HeaderControlID: {"C" + strconv.Itoa(i)}}})
		require.NoError(t, err)
	}
	testkit.WaitFor(t, 10*time.Second, func() error { // the router holds inputs it cannot route yet
		info, err := n.JetStream.Consumer(ctx, wire.StreamIn, wire.RouterConsumer)
		if err != nil {
			return fmt.Errorf("router consumer: %w", err)
		}
		ci, err := info.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumAckPending == 0 {
			return fmt.Errorf("the router holds no input yet (%d delivered)", ci.Delivered.Stream)
		}
		return nil
	})
	assert.Empty(t, routedCount, "nothing is acked while its copy is not stored")

	require.NoError(t, n.EnsureStreams(ctx, c)) // storage is back
	var acked []uint64
	for len(acked) < inputs {
		select {
		case seq := <-routedCount:
			acked = append(acked, seq)
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d inputs routed", len(acked), inputs)
		}
	}
	order := outControlIDs(t, n)
	want := make([]string, inputs)
	for i := range want {
		want[i] = "C" + strconv.Itoa(i)
	}
	assert.Equal(t, want, order, "each copy once, in stored order")
}

// Two routers on one HL7_IN, as two broker instances on one cluster run:
// one routes everything, in stored order; when it stops, the other takes
// over after the pinned TTL and nothing is lost or reordered.
func TestTwoRoutersOneActiveAndFailover(t *testing.T) {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	defer n.Close()
	routed := make(chan string, 200)
	start := func(name string) (stop func()) { return startTestRouter(n, name, n.Sync, routed) }
	publish := func(from, to int) { publishADTs(t, n, from, to) }
	collect := func(n int) map[string]int {
		by := map[string]int{}
		for range n {
			select {
			case who := <-routed:
				by[who]++
			case <-time.After(20 * time.Second):
				t.Fatalf("only %v of %d routed", by, n)
			}
		}
		return by
	}
	stops := map[string]func(){"a": start("a"), "b": start("b")}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	publish(0, 50)
	first := collect(50)
	require.Len(t, first, 1, "one router routes while the other waits: %v", first)
	var active, standby string
	for who := range first {
		active = who
	}
	standby = map[string]string{"a": "b", "b": "a"}[active]

	stops[active]()
	delete(stops, active)
	publish(50, 80)
	assert.Equal(t, map[string]int{standby: 30}, collect(30), "the standby takes over")

	order := outControlIDs(t, n)
	want := make([]string, 80)
	for i := range want {
		want[i] = fmt.Sprintf("C%03d", i)
	}
	assert.Equal(t, want, order, "every input routed once, in stored order, across the failover")
}

// A router that stops (its broker shut down, as in a rolling upgrade)
// gives up its pin: the standby takes over at once, not after the pin's
// time to live (15 s where brokers share a store).
func TestStoppedRouterHandsOverAtOnce(t *testing.T) {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	defer n.Close()
	routed := make(chan string, 200)
	start := func(name string) (stop func()) {
		return startTestRouterTTL(n, name, n.Sync, routed, routing.SharedPinnedTTL)
	}
	stops := map[string]func(){"a": start("a"), "b": start("b")}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	publishADTs(t, n, 0, 10)
	active := activeRouter(t, routed, 10)
	standby := map[string]string{"a": "b", "b": "a"}[active]
	stops[active]()
	delete(stops, active)
	stopped := time.Now()
	publishADTs(t, n, 10, 20)
	for i := range 10 {
		select {
		case who := <-routed:
			require.Equal(t, standby, who)
		case <-time.After(routing.SharedPinnedTTL - 5*time.Second):
			t.Fatalf("%d of 10 routed %s after the active router stopped: the standby waited for the pin to expire", i, time.Since(stopped))
		}
	}
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprintf("C%03d", i)
	}
	assert.Equal(t, want, distinct(outControlIDs(t, n)), "in stored order across the hand-over")
}

// The active router dies holding inputs it was given but did not route
// (as a crash leaves them: unacked, redelivered only after the ack wait).
// The standby that takes over routes those first, then newer inputs.
func TestTakeoverRoutesWhatTheDeadRouterHeldFirst(t *testing.T) {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	defer n.Close()
	ctx := context.Background()
	start, stall, routed := stallableRouters(n)
	publish := func(from, to int) { publishADTs(t, n, from, to) }
	stops := map[string]func(){"a": start("a"), "b": start("b")}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	publish(0, 20)
	active := activeRouter(t, routed, 20)
	// The active router now stalls after routing: it holds its group and
	// everything delivered to it meanwhile, unacked.
	stall.Store(active, true)
	publish(20, 40)
	cons, err := n.JetStream.Consumer(ctx, wire.StreamIn, "router")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 20
	}, 20*time.Second, 10*time.Millisecond, "the active router holds the 20 new inputs")
	stops[active]() // dies holding them
	delete(stops, active)
	publish(40, 60)

	want := make([]string, 60)
	for i := range want {
		want[i] = fmt.Sprintf("C%03d", i)
	}
	// Well before the held inputs' ack wait (30 s) runs out.
	testkit.WaitFor(t, 15*time.Second, func() error {
		if got := distinct(outControlIDs(t, n)); len(got) != 60 {
			return fmt.Errorf("every input routed: %d of 60 so far: %v", len(got), got)
		}
		return nil
	})
	assert.Equal(t, want, distinct(outControlIDs(t, n)), "in stored order across the takeover")
}

// stallableRouters starts test routers by name; a name stored in stall
// makes that router's Sync block until it stops (it routes, then holds
// its inputs unacked). Each router sends its name to routed per input.
func stallableRouters(n *store.NATS) (start func(name string) (stop func()), stall *sync.Map, routed chan string) {
	stall, routed = &sync.Map{}, make(chan string, 200)
	start = func(name string) (stop func()) {
		sync := func(ctx context.Context) error {
			if v, ok := stall.Load(name); ok {
				// A condition stalls it once the condition holds; true, at once.
				if cond, isCond := v.(func() bool); !isCond || cond() {
					<-ctx.Done()
					return ctx.Err()
				}
			}
			return n.Sync(ctx)
		}
		return startTestRouter(n, name, sync, routed)
	}
	return start, stall, routed
}

// activeRouter waits for n inputs to be routed and returns the router
// that routed the last of them.
func activeRouter(t *testing.T, routed <-chan string, n int) (active string) {
	t.Helper()
	for range n {
		select {
		case active = <-routed:
		case <-time.After(20 * time.Second):
			t.Fatal("the first inputs were not routed")
		}
	}
	return active
}

// startTestRouter runs a router (one route, all to emr, pinned TTL 1 s)
// that sends its name to routed for each input it acks.
func startTestRouter(n *store.NATS, name string, sync func(context.Context) error, routed chan<- string) (stop func()) {
	return startTestRouterTTL(n, name, sync, routed, time.Second)
}

// startTestRouterTTL is startTestRouter with a pinned TTL of ttl.
func startTestRouterTTL(n *store.NATS, name string, sync func(context.Context) error, routed chan<- string, ttl time.Duration) (stop func()) {
	r := &routing.Router{JetStream: n.JetStream, Sync: sync, Log: zerolog.Nop(), PinnedTTL: ttl,
		OnRouted: func(uint64, []string) { routed <- name }}
	r.SetTable(&routing.Table{Routes: []routing.Route{{Name: "all", To: []string{"emr"}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// publishADTs stores inputs with control IDs C<from> to C<to-1> in HL7_IN.
func publishADTs(t *testing.T, n *store.NATS, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := n.JetStream.PublishMsg(context.Background(), &nats.Msg{Subject: "hl7.in.adt.ADT.A01", Data: []byte(testkit.ADT),
			Header: nats.Header{wire.HeaderListener: {"adt"}, wire.HeaderType: {"ADT"}, wire.HeaderEvent: {"A01"}, wire.HeaderControlID: {fmt.Sprintf("C%03d", i)}}})
		require.NoError(t, err)
	}
}

// distinct keeps the first of each string, in order.
func distinct(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// outControlIDs lists the control IDs of the copies in HL7_OUT, in stored
// order (not the routers' fence records).
func outControlIDs(t testing.TB, n *store.NATS) []string { return routing.CopiesOf(t, n, "") }

// The router acknowledges a group of inputs with one cumulative ack, not
// one ack per input, and leaves nothing unacknowledged.
func TestRouterAcknowledgesAGroupAtOnce(t *testing.T) {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	defer n.Close()
	const total = 300
	publishADTs(t, n, 0, total)
	var acks sync.Mutex
	sent := 0
	sub, err := n.Conn.Subscribe("$JS.ACK."+wire.StreamIn+"."+wire.RouterConsumer+".>", func(*nats.Msg) {
		acks.Lock()
		sent++
		acks.Unlock()
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()
	routed := make(chan string, total)
	stop := startTestRouter(n, "r", nil, routed)
	defer stop()
	for i := range total {
		select {
		case <-routed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d inputs routed", i, total)
		}
	}
	require.Equal(t, total, len(distinct(outControlIDs(t, n))), "every input routed once")
	testkit.WaitFor(t, 10*time.Second, func() error {
		cons, err := n.JetStream.Consumer(context.Background(), wire.StreamIn, wire.RouterConsumer)
		if err != nil {
			return err
		}
		info := cons.CachedInfo()
		if info.Config.AckPolicy != jetstream.AckAllPolicy || info.NumAckPending != 0 || info.AckFloor.Stream != total {
			return fmt.Errorf("ack policy %s, %d unacknowledged, ack floor %d of %d", info.Config.AckPolicy, info.NumAckPending, info.AckFloor.Stream, total)
		}
		return nil
	})
	require.NoError(t, n.Conn.Flush())
	acks.Lock()
	defer acks.Unlock()
	require.Positive(t, sent)
	require.LessOrEqual(t, sent, total/10, "%d inputs acknowledged in groups, not one by one", total)
}

// HL7_OUT's own duplicate window is short (store.RouterHorizon): an input
// a dead router held is routed again by the one taking over long after
// its copies were stored, and none is stored twice, because the router
// reads HL7_OUT's tail for them first.
func TestTakeoverStoresNoCopyTwicePastTheOutWindow(t *testing.T) {
	c := testkit.Config(t)
	c.NATS.DuplicateWindow = time.Second // HL7_OUT's window: 1 s here
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	defer n.Close()
	ctx := context.Background()
	s, err := n.JetStream.Stream(ctx, wire.StreamOut)
	require.NoError(t, err)
	require.Equal(t, time.Second, s.CachedInfo().Config.Duplicates)
	start, stall, routed := stallableRouters(n)
	stops := map[string]func(){"a": start("a"), "b": start("b")}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	publishADTs(t, n, 0, 10)
	active := activeRouter(t, routed, 10)
	// It stores its next copies, and never acks the batch that holds the
	// last of them: a router may take the inputs one at a time (on a busy
	// machine they arrive so), and a stalled flush would hold up the rest.
	stall.Store(active, func() bool {
		s, err := n.JetStream.Stream(context.Background(), wire.StreamOut)
		if err != nil {
			return true
		}
		info, err := s.Info(context.Background())
		return err != nil || info.State.Msgs >= 20
	})
	publishADTs(t, n, 10, 20)
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := len(outControlIDs(t, n)); got != 20 {
			return fmt.Errorf("%d copies stored, want 20 (the stalled router's too)", got)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // past HL7_OUT's 1 s window: JetStream alone would store them again
	stops[active]()
	delete(stops, active)
	publishADTs(t, n, 20, 25)
	want := make([]string, 25)
	for i := range want {
		want[i] = fmt.Sprintf("C%03d", i)
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := distinct(outControlIDs(t, n)); len(got) != 25 {
			return fmt.Errorf("every input routed: %d of 25 so far", len(got))
		}
		return nil
	})
	assert.Equal(t, want, outControlIDs(t, n), "each copy once, in order, across the takeover")
}

func TestTheOutWindowCoversTheRoutersRedeliveryHorizon(t *testing.T) {
	assert.GreaterOrEqual(t, store.RouterHorizon, routing.RouterAckWait+routing.SharedPinnedTTL+5*time.Second)
}
