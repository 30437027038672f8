package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fenceStore is an embedded store whose duplicate window is short, so
// that a copy stored again after it is a second copy, as one stored two
// minutes late would be in production.
func fenceStore(t *testing.T, window time.Duration) *store.NATS {
	t.Helper()
	c := testkit.Config(t)
	c.NATS.DuplicateWindow = window
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}

func publishInputs(t testing.TB, n *store.NATS, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := n.JetStream.PublishMsg(context.Background(), &nats.Msg{Subject: "hl7.in.adt.ADT.A01", Data: []byte(testkit.ADT),
			Header: nats.Header{wire.HeaderListener: {"adt"}, wire.HeaderType: {"ADT"}, wire.HeaderEvent: {"A01"}, wire.HeaderControlID: {fmt.Sprintf("C%05d", i)}}})
		require.NoError(t, err)
	}
}

// CopiesOf (for the routing_test package too) lists the control IDs of dest's copies in HL7_OUT (every
// destination's with ""), in stored order.
func CopiesOf(t testing.TB, n *store.NATS, dest string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := n.JetStream.Stream(ctx, wire.StreamOut)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // an older fence record, purged since: a hole in the sequence
		}
		require.NoError(t, err)
		if m.Subject == wire.SubjectRouterFence || dest != "" && m.Subject != wire.OutSubject(dest) {
			continue
		}
		ids = append(ids, m.Header.Get(wire.HeaderControlID))
	}
	return ids
}

func wantIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("C%05d", i))
	}
	return out
}

type testRouter struct {
	*Router
	routed atomic.Int64
	logs   *syncbuf.Buffer
	stop   func()
}

func startRouter(n *store.NATS, hook func(uint64)) *testRouter {
	tr := &testRouter{logs: &syncbuf.Buffer{}}
	tr.Router = &Router{JetStream: n.JetStream, Sync: n.Sync, Log: zerolog.New(tr.logs), PinnedTTL: time.Second,
		OnRouted: func(uint64, []string) { tr.routed.Add(1) }, testHookBeforeStore: hook}
	tr.SetTable(&Table{Routes: []Route{{Name: "all", To: []string{"emr"}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.Run(ctx); close(done) }()
	tr.stop = func() { cancel(); <-done }
	return tr
}

// unpinUntil unpins the router group until cond holds (the pin went where
// the test wants it), failing with what it waited for.
func unpinUntil(t *testing.T, n *store.NATS, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, func() error {
		if cond() {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s, err := n.JetStream.Stream(ctx, wire.StreamIn); err == nil {
			_ = s.UnpinConsumer(ctx, wire.RouterConsumer, wire.RouterGroup)
		}
		return fmt.Errorf("waiting for %s", what)
	})
}

// A router that stalled holding an input while the pin moved to another
// (a long pause, a partition) stores nothing when it resumes: the server
// refuses its copy at the fence its successor put up, and the router,
// finding the pin is not its own, drops what it holds. Without the fence,
// its copy of C00006 was stored a second time after C00029, once the
// duplicate window had passed.
func TestAStalledRouterStoresNothingAfterItsPinMoved(t *testing.T) {
	const window = time.Second
	n := fenceStore(t, window)
	a := startRouter(n, nil)
	publishInputs(t, n, 0, 10)
	testkit.WaitFor(t, 20*time.Second, func() error {
		if a.routed.Load() < 10 {
			return fmt.Errorf("router a: %d of 10 routed", a.routed.Load())
		}
		return nil
	})
	in, err := n.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	held, err := in.GetMsg(context.Background(), 7) // C00006, as a held it when it stalled
	require.NoError(t, err)
	a.stop() // its pin moves on (as a stall longer than the pin's TTL moves it)

	b := startRouter(n, nil)
	defer b.stop()
	publishInputs(t, n, 10, 30)
	testkit.WaitFor(t, 20*time.Second, func() error {
		if b.routed.Load() < 20 {
			return fmt.Errorf("router b: %d of 20 routed", b.routed.Load())
		}
		return nil
	})
	require.Equal(t, wantIDs(0, 30), CopiesOf(t, n, "emr"))
	doneAt := time.Now()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if time.Since(doneAt) < window+500*time.Millisecond {
			return fmt.Errorf("waiting for the duplicate window (%s) to pass since b stored the copies", window)
		}
		return nil
	})

	// a resumes where it stalled: routing C00006 with the fence it had.
	_, ok := a.routeInput(context.Background(), 7, held.Header, held.Data, func() bool { return false })
	assert.False(t, ok, "a stops routing")
	assert.True(t, a.fenced, "a found that another router took over")
	assert.Equal(t, wantIDs(0, 30), CopiesOf(t, n, "emr"), "the stalled router stored nothing more")
}

// The fence under load, many times: two routers, inputs arriving all the
// while, the pin moved between them every few tens of milliseconds, and
// routers stalling now and then (pauses up to 150 ms, as a collector or a
// starved core makes), and copies replayed into HL7_OUT by a person all
// the while. Every input's copy is stored once, in stored order.
func TestFenceKeepsOrderWhileThePinMovesUnderLoad(t *testing.T) {
	rounds, inputs := 3, 2000
	if testing.Short() || raceEnabled { // the race detector's run: one round (CI runs both)
		rounds, inputs = 1, 1000
	}
	for round := range rounds {
		t.Run("round"+strconv.Itoa(round), func(t *testing.T) {
			n := fenceStore(t, 2*time.Minute)
			rng := rand.New(rand.NewPCG(uint64(round), 7))
			var mu sync.Mutex
			stall := func(uint64) {
				mu.Lock()
				d := time.Duration(0)
				if rng.IntN(100) == 0 {
					d = time.Duration(rng.IntN(150)) * time.Millisecond
				}
				mu.Unlock()
				time.Sleep(d) // a pause inside the router, not a wait of the test
			}
			a, b := startRouter(n, stall), startRouter(n, stall)
			defer a.stop()
			defer b.stop()
			published := make(chan struct{})
			go func() { // 50 inputs every 10 ms: a steady load
				defer close(published)
				pace := time.NewTicker(10 * time.Millisecond)
				defer pace.Stop()
				for i := 0; i < inputs; i += 50 {
					publishInputs(t, n, i, i+50)
					<-pace.C
				}
			}()
			var moves atomic.Int64
			flipping, flipped := make(chan struct{}), make(chan struct{})
			go func() { // the pin moves every 20 ms until every input is routed
				defer close(flipped)
				flip := time.NewTicker(20 * time.Millisecond)
				defer flip.Stop()
				ctx := context.Background()
				for {
					select {
					case <-flipping:
						return
					case <-flip.C:
						if s, err := n.JetStream.Stream(ctx, wire.StreamIn); err == nil && s.UnpinConsumer(ctx, wire.RouterConsumer, wire.RouterGroup) == nil {
							moves.Add(1)
						}
					}
				}
			}()
			replaying := make(chan struct{})
			replayed := make(chan int)
			go func() { // a person replays copies into HL7_OUT all the while: not a router, never fenced out
				n2, tick := 0, time.NewTicker(5*time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-replaying:
						replayed <- n2
						return
					case <-tick.C:
						if _, err := n.JetStream.Publish(context.Background(), wire.OutSubject("other"), []byte("MSH|^~\\&|x\r")); err == nil {
							n2++
						}
					}
				}
			}()
			<-published
			ctx := context.Background()
			testkit.WaitFor(t, 60*time.Second, func() error {
				c, err := n.JetStream.Consumer(ctx, wire.StreamIn, wire.RouterConsumer)
				if err != nil {
					return err
				}
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				if info.AckFloor.Stream < uint64(inputs) {
					return fmt.Errorf("inputs routed and acked: %d of %d", info.AckFloor.Stream, inputs)
				}
				return nil
			})
			close(flipping)
			<-flipped
			close(replaying)
			replays := <-replayed
			got := CopiesOf(t, n, "emr")
			require.Equal(t, wantIDs(0, inputs), got, "each copy once, in stored order, after %d pin moves", moves.Load())
			st, err := n.JetStream.Stream(ctx, wire.StreamOut)
			require.NoError(t, err)
			fences, err := st.Info(ctx, jetstream.WithSubjectFilter(wire.SubjectRouterFence))
			require.NoError(t, err)
			assert.EqualValues(t, 1, fences.State.Subjects[wire.SubjectRouterFence], "only the last fence record is kept")
			fenced := strings.Count(a.logs.String(), "another router took over") + strings.Count(b.logs.String(), "another router took over")
			require.Positive(t, moves.Load())
			t.Logf("round %d: %d inputs, %d pin moves, %d replays stored meanwhile, routed by a %d and b %d, a router fenced out %d times",
				round, inputs, moves.Load(), replays, a.routed.Load(), b.routed.Load(), fenced)
		})
	}
}

// RouterAckWait is routerAckWait, for the external tests.
const RouterAckWait = routerAckWait
