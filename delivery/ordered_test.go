package delivery

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// recorder is a Deliverer that keeps what it was given, in order; fail,
// if set, decides an attempt's outcome.
type recorder struct {
	mu   *sync.Mutex
	got  *[]uint64 // InSeq of each delivered message, shared by recorders
	name string
	by   *[]string // which recorder delivered each
	fail func(m Message) bool
}

func (r *recorder) Deliver(_ context.Context, m Message) Result {
	if r.fail != nil && r.fail(m) {
		return Result{Outcome: Retry, Reason: "test: not yet"}
	}
	r.mu.Lock()
	*r.got = append(*r.got, m.InSeq)
	*r.by = append(*r.by, r.name)
	r.mu.Unlock()
	return Result{Outcome: Delivered, Code: "AA"}
}

func (r *recorder) Close() error { return nil }

type deliveries struct {
	mu  sync.Mutex
	got []uint64
	by  []string
}

func (d *deliveries) recorder(name string, fail func(Message) bool) *recorder {
	return &recorder{mu: &d.mu, got: &d.got, by: &d.by, name: name, fail: fail}
}

func (d *deliveries) snapshot() ([]uint64, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint64(nil), d.got...), append([]string(nil), d.by...)
}

// waitDelivered waits until n deliveries were recorded.
func (d *deliveries) waitDelivered(t *testing.T, n int, what string) []uint64 {
	t.Helper()
	var got []uint64
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got, _ = d.snapshot(); len(got) < n {
			return fmt.Errorf("%s: %d of %d delivered", what, len(got), n)
		}
		return nil
	})
	return got
}

func openStore(t *testing.T) *store.NATS {
	t.Helper()
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}

// queueCopies stores copies for destination dest with input sequences
// from..to, interleaved with copies for another destination (so that the
// queue's stream sequences are not contiguous, as in a real HL7_OUT).
func queueCopies(t *testing.T, n *store.NATS, dest string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		for _, d := range []string{dest, "other"} {
			h := nats.Header{}
			h.Set(wire.HeaderInSeq, strconv.Itoa(i))
			h.Set(wire.HeaderControlID, fmt.Sprintf("C%d", i))
			_, err := n.JetStream.PublishMsg(context.Background(), &nats.Msg{Subject: wire.OutSubject(d), Header: h, Data: []byte("MSH|^~\\&|x\r")})
			require.NoError(t, err)
		}
	}
}

func startWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("the worker did not stop within 10 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testDest(name string, d Deliverer) Destination {
	return Destination{Name: name, Type: "test", Ordering: "fifo", MaxAttempts: 1000, Backoff: []time.Duration{50 * time.Millisecond},
		Timeout: time.Second, NewDeliverer: func() (Deliverer, error) { return d, nil }}
}

// requireInOrder: every message, first arrivals in stored order; a
// message delivered again (at least once) repeats one delivered earlier.
func requireInOrder(t *testing.T, got []uint64, from, to int) {
	t.Helper()
	seen := map[uint64]bool{}
	var firsts []uint64
	for _, g := range got {
		if !seen[g] {
			seen[g] = true
			firsts = append(firsts, g)
		}
	}
	requireInOrderOnce(t, firsts, from, to)
}

func requireInOrderOnce(t *testing.T, got []uint64, from, to int) {
	t.Helper()
	want := make([]uint64, 0, to-from+1)
	for i := from; i <= to; i++ {
		want = append(want, uint64(i))
	}
	require.Equal(t, want, got, "every message once, in stored order")
}

// A run that died holding messages (given to it, not acked) leaves them
// pending until their ack wait ends, while newer ones flow: the next run
// delivers them first, in order, and skips their redelivery later.
func TestOrderedQueueDeliversWhatADeadRunHeldFirst(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	queueCopies(t, n, "emr", 1, 300)
	dest := testDest("emr", nil)
	// The dead run: it was given 60 messages and acked the first 10.
	cons, err := n.JetStream.CreateOrUpdateConsumer(context.Background(), wire.StreamOut, jetstream.ConsumerConfig{
		Durable: wire.DeliveryConsumer("emr"), FilterSubject: wire.OutSubject("emr"), AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: fetchAhead, AckWait: dest.ackWait(), MaxDeliver: -1,
	})
	require.NoError(t, err)
	batch, err := cons.Fetch(60)
	require.NoError(t, err)
	i := 0
	for m := range batch.Messages() {
		if i++; i <= 10 {
			require.NoError(t, m.DoubleAck(context.Background()))
		}
	}
	require.Equal(t, 60, i)

	var d deliveries
	dest.NewDeliverer = func() (Deliverer, error) { return d.recorder("next", nil), nil }
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: dest, Log: zerolog.Nop()})
	requireInOrderOnce(t, d.waitDelivered(t, 290, "after the dead run"), 11, 300)

	// The 50 held messages come back when their ack wait ends: skipped,
	// and acked, so that nothing stays pending.
	testkit.WaitFor(t, 3*dest.ackWait(), func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumRedelivered != 0 {
			return fmt.Errorf("%d messages still pending, %d redelivered", info.NumAckPending, info.NumRedelivered)
		}
		return nil
	})
	got, _ := d.snapshot()
	requireInOrderOnce(t, got, 11, 300)
}

// While the head of the queue is retried for longer than the ack wait,
// the messages fetched behind it are kept from timing out: each is
// delivered once, after the head, in order.
func TestOrderedQueueHoldsTheLineWithoutRedeliveries(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	queueCopies(t, n, "lab", 1, 50)
	var d deliveries
	until := time.Now().Add(8 * time.Second) // longer than the ack wait (6 s)
	dest := testDest("lab", d.recorder("w", func(m Message) bool { return m.InSeq == 1 && time.Now().Before(until) }))
	dest.Backoff = []time.Duration{500 * time.Millisecond}
	require.Less(t, dest.ackWait(), time.Until(until))
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: dest, Log: zerolog.Nop()})
	requireInOrderOnce(t, d.waitDelivered(t, 50, "after the head was retried"), 1, 50)
	require.EqualValues(t, 50, handedOut(t, n, "lab"), "each message handed out once: none timed out while it waited behind the head")
}

// handedOut is how many times dest's queue handed out a message.
func handedOut(t *testing.T, n *store.NATS, dest string) uint64 {
	t.Helper()
	cons, err := n.JetStream.Consumer(context.Background(), wire.StreamOut, wire.DeliveryConsumer(dest))
	require.NoError(t, err)
	info, err := cons.Info(context.Background())
	require.NoError(t, err)
	return info.Delivered.Consumer
}

// One attempt that takes longer than the ack wait (a slow receiver) is
// not handed out again meanwhile: an ordered slot keeps the message it is
// delivering in progress itself, with no timer of its own per attempt.
func TestOrderedQueueSlowAttemptIsNotRedelivered(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	queueCopies(t, n, "lab", 1, 5)
	var d deliveries
	dest := testDest("lab", nil)
	slow := dest.ackWait() + 2*time.Second // the receiver's first answer comes this late
	var once sync.Once
	rec := d.recorder("w", func(m Message) bool {
		if m.InSeq == 1 {
			once.Do(func() { <-time.After(slow) })
		}
		return false
	})
	dest.NewDeliverer = func() (Deliverer, error) { return rec, nil }
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: dest, Log: zerolog.Nop()})
	requireInOrderOnce(t, d.waitDelivered(t, 5, "after the slow attempt"), 1, 5)
	require.EqualValues(t, 5, handedOut(t, n, "lab"), "each message handed out once: the slow one did not time out")
}

// An ordered queue acknowledges cumulatively: while messages wait in its
// inbox it sends one ack per ackEvery, and when the inbox is empty it
// acknowledges the last one, so that nothing delivered stays pending.
func TestOrderedQueueAcknowledgesCumulatively(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	const total = 50
	queueCopies(t, n, "lab", 1, total)
	var sentAcks atomic.Int64 // what the client sent to the queue's ack subjects
	sub, err := n.Conn.Subscribe("$JS.ACK."+wire.StreamOut+"."+wire.DeliveryConsumer("lab")+".>", func(*nats.Msg) { sentAcks.Add(1) })
	require.NoError(t, err)
	defer sub.Unsubscribe()
	release := make(chan struct{})
	var d deliveries
	rec := d.recorder("w", func(m Message) bool {
		if m.InSeq == 1 {
			<-release // the rest gather in the inbox meanwhile
		}
		return false
	})
	dest := testDest("lab", nil)
	dest.NewDeliverer = func() (Deliverer, error) { return rec, nil }
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: dest, Log: zerolog.Nop()})
	var cons jetstream.Consumer
	testkit.WaitFor(t, 10*time.Second, func() error {
		var err error
		if cons, err = n.JetStream.Consumer(context.Background(), wire.StreamOut, wire.DeliveryConsumer("lab")); err != nil {
			return fmt.Errorf("the worker's consumer: %w", err)
		}
		info := cons.CachedInfo()
		if info.NumAckPending < total {
			return fmt.Errorf("%d of %d handed to the worker", info.NumAckPending, total)
		}
		return nil
	})
	close(release)
	requireInOrderOnce(t, d.waitDelivered(t, total, "after the first was released"), 1, total)
	testkit.WaitFor(t, 10*time.Second, func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.Config.AckPolicy != jetstream.AckAllPolicy || info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("ack policy %s, %d pending, %d unacknowledged", info.Config.AckPolicy, info.NumPending, info.NumAckPending)
		}
		return nil
	})
	require.NoError(t, n.Conn.Flush())
	require.LessOrEqual(t, sentAcks.Load(), int64(10), "%d messages acknowledged with a few cumulative acks, not one each", total)
	require.Positive(t, sentAcks.Load())
}

// sentAck is a queue message that records the acks sent for it.
type sentAck struct {
	jetstream.Msg // nil: only Ack is called
	seq           uint64
	sent          *[]uint64
}

func (m sentAck) Ack() error {
	*m.sent = append(*m.sent, m.seq)
	return nil
}

// A cumulative ack names the highest message finished since the last one
// sent; a redelivery of one acknowledged before (its ack lost, as when the
// server restarted) is acknowledged again, or a queue handing out one
// message at a time would wait for that ack forever.
func TestOrderedAcksAreCumulativeAndResentForRedeliveries(t *testing.T) {
	var sent []uint64
	a := &acks{log: zerolog.Nop()}
	msg := func(seq uint64) jetstream.Msg { return sentAck{seq: seq, sent: &sent} }
	a.finished(msg(10), 10)
	a.finished(msg(11), 11)
	a.send()
	require.Equal(t, []uint64{11}, sent, "one ack for both")
	a.send()
	require.Equal(t, []uint64{11}, sent, "nothing finished since")
	a.finished(msg(11), 11) // redelivered: the ack of 11 was lost
	a.send()
	a.finished(msg(5), 5) // an older one, redelivered
	a.send()
	a.finished(msg(12), 12)
	a.finished(msg(6), 6)
	a.send()
	require.Equal(t, []uint64{11, 11, 5, 12}, sent)
	for i := range ackEvery - 1 {
		require.False(t, a.finished(msg(uint64(100+i)), uint64(100+i)))
	}
	require.True(t, a.finished(msg(200), 200), "ackEvery finished: time to send")
}

// Several broker instances on one store (Shared) run a worker each for
// the same queue: one delivers at a time, in order; when it stops, the
// other takes over where it left.
func TestOrderedQueueSharedByTwoWorkersKeepsOrder(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	var d deliveries
	stopA := startWorker(t, &Worker{JetStream: n.JetStream, Dest: testDest("ris", d.recorder("a", nil)), Log: zerolog.Nop(), Shared: true})
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: testDest("ris", d.recorder("b", nil)), Log: zerolog.Nop(), Shared: true})
	queueCopies(t, n, "ris", 1, 400)
	requireInOrderOnce(t, d.waitDelivered(t, 400, "two workers"), 1, 400)
	_, by := d.snapshot()
	first := by[0]
	stop := stopA
	if first == "b" {
		t.Log("b took the pin first")
	}
	stop() // a (pinned or not) stops; b delivers the rest
	queueCopies(t, n, "ris", 401, 600)
	got := d.waitDelivered(t, 600, "after one worker stopped")
	_, by = d.snapshot()
	for i := range got {
		if i > 0 && got[i] <= got[i-1] {
			t.Logf("delivery %d: %d by %s after %d by %s", i+1, got[i], by[i], got[i-1], by[i-1])
		}
	}
	requireInOrder(t, got, 1, 600)
	for i, w := range by[:400] {
		require.Equal(t, first, w, "delivery %d: one worker at a time while both run", i+1)
	}
	for i, w := range by[400:] {
		require.Equal(t, "b", w, "delivery %d: the worker left running", 401+i)
	}
}

// retry: {max_attempts: 0} (RetryForever), an ordered queue's default:
// a downstream down for many more attempts than any count would allow is
// waited for, and the queue then drains in order with nothing
// dead-lettered (an overnight EMR outage, shortened).
func TestOrderedQueueRetriesUntilDeliveredWithRetryForever(t *testing.T) {
	t.Parallel()
	n := openStore(t)
	queueCopies(t, n, "emr", 1, 20)
	var d deliveries
	var attempts atomic.Int64
	down := d.recorder("w", func(m Message) bool { return attempts.Add(1) <= 40 }) // the first 40 attempts fail
	dest := testDest("emr", down)
	dest.MaxAttempts = -1 // config.RetryForever
	dest.Backoff = []time.Duration{time.Millisecond}
	var dead atomic.Int64
	startWorker(t, &Worker{JetStream: n.JetStream, Dest: dest, Log: zerolog.Nop(), OnDone: func(outcome string, _ nats.Header) {
		if outcome == "dead_lettered" {
			dead.Add(1)
		}
	}})
	requireInOrderOnce(t, d.waitDelivered(t, 20, "after 40 failed attempts"), 1, 20)
	require.Zero(t, dead.Load(), "nothing dead-lettered")
	require.Greater(t, attempts.Load(), int64(40))
}
