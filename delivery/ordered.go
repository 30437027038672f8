package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// fetchAhead is how many messages an ordered slot (a fifo queue, or one
// key partition) holds unacknowledged: it delivers them one at a time, in
// stored order, while the next ones are already on their way. With one
// (MaxAckPending 1, as before) each message waited for the previous ack
// to reach the server and for the server to hand over the next: a fifo
// queue drained at a few hundred messages a second behind ingest traffic.
const fetchAhead = 128

// sharedFetchAhead is fetchAhead where several broker instances share the
// store. A consumer leader that moves with a lost NATS node forgets the
// pin and may give it to another broker's slot while this one still
// delivers what it fetched: with 128 in hand, TestClusterNodeAndBrokerKilled
// saw 53 to 159 messages out of order under load. With one, at most the
// message on the wire can cross. Order first; the fast drain stays for a
// broker alone on its store (the default, embedded).
const sharedFetchAhead = 1

// ackEvery is how many finished messages an ordered slot acknowledges at
// once. Its consumer acknowledges cumulatively (AckAll: an ack covers
// every message before it), so the slot acks only the last message it
// finished: once ackEvery are waiting, whenever its inbox is empty, at
// each touch (a third of the ack wait) and when it stops. One ack per
// ackEvery messages, not one each: the server, the client and the
// scheduler do that much less per message, and a backlog drained a third
// faster (docs/BENCHMARKS.md). After a crash, at most ackEvery
// delivered messages are delivered again (at least once, as always).
const ackEvery = 32

// orderedPinnedTTL is how long an ordered slot that stopped asking for
// messages stays the one delivering, when several broker instances share
// the store; a slot of another broker (or of this one after a crash)
// takes over then. Three pull expiries, so that a slot that is alive but
// holding the line (retrying a message) never loses it. (A broker with
// the embedded store is alone: its one slot per queue needs no pin.)
const orderedPinnedTTL = 15 * time.Second

// queued is what an ordered slot delivers: a message from the consumer,
// or one read back from the stream while taking over (see recoverHeld).
type queued interface {
	Data() []byte
	Headers() nats.Header
	Metadata() (*jetstream.MsgMetadata, error)
	Ack() error
	Nak() error
	NakWithDelay(time.Duration) error
	InProgress() error
}

// heldMsg is a message an earlier run (or another broker) was given and
// did not acknowledge, read back from HL7_OUT. It cannot be acknowledged
// through the consumer: it stays pending there until its ack wait ends,
// and is then redelivered and skipped (see orderedSlot.take).
type heldMsg struct{ m *jetstream.RawStreamMsg }

func (h heldMsg) Data() []byte         { return h.m.Data }
func (h heldMsg) Headers() nats.Header { return h.m.Header }
func (h heldMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: h.m.Sequence}}, nil
}
func (heldMsg) Ack() error                       { return nil }
func (heldMsg) Nak() error                       { return nil }
func (heldMsg) NakWithDelay(time.Duration) error { return nil }
func (heldMsg) InProgress() error                { return nil }

// acks holds what an ordered slot finished (delivered, dead-lettered or
// skipped as delivered already) and has not acknowledged yet. Safe for
// concurrent use: the slot's touch sends them too.
type acks struct {
	log  zerolog.Logger
	mu   sync.Mutex
	last jetstream.Msg // of those finished since the last ack sent, the one with the highest stream sequence
	seq  uint64        // its stream sequence
	n    int           // finished since the last ack sent
}

// finished records m, of stream sequence seq, as done; it reports whether
// ackEvery are waiting.
// A redelivery of a message finished before the last ack sent is acked
// again: that ack may have been lost (the server restarted), and with one
// message handed out at a time (brokers sharing a store) nothing else
// would ever move the queue on.
func (a *acks) finished(m jetstream.Msg, seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq > a.seq {
		a.last, a.seq = m, seq
	}
	a.n++
	return a.n >= ackEvery
}

// send acknowledges the last finished message, and with it every one
// before it.
func (a *acks) send() {
	a.mu.Lock()
	m := a.last
	a.last, a.seq, a.n = nil, 0, 0
	a.mu.Unlock()
	if m == nil {
		return
	}
	if err := m.Ack(); err != nil {
		a.log.Warn().Err(err).Msg("delivered, but the queue ack failed: messages delivered since the last ack may be delivered again")
	}
}

// ackLater is a message of an ordered slot: its Ack is recorded and sent
// with the slot's next cumulative ack.
type ackLater struct {
	jetstream.Msg
	acks *acks
	seq  uint64 // its stream sequence, read once by take
}

func (m ackLater) Ack() error {
	if m.acks.finished(m.Msg, m.seq) {
		m.acks.send()
	}
	return nil
}

// inbox holds what the consumer handed an ordered slot and the slot has
// not finished yet. The consumer's callback never waits on it (so nats.go
// keeps a pull request open and the slot keeps its pin), and while one
// message is retried the rest are kept from timing out.
type inbox struct {
	mu      sync.Mutex
	msgs    []jetstream.Msg
	current jetstream.Msg // the one being delivered (popped last)
	ready   chan struct{} // one token when msgs became non-empty
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (b *inbox) push(m jetstream.Msg) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// pop takes the oldest message, or false if there is none; it is the
// current one until the next pop.
func (b *inbox) pop() (jetstream.Msg, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.current = nil
	if len(b.msgs) == 0 {
		return nil, false
	}
	m := b.msgs[0]
	b.msgs[0] = nil
	b.msgs = b.msgs[1:]
	b.current = m
	return m, true
}

// touch tells JetStream the current message and every waiting one are
// still in hand. (A retried message's own backoff waits may each be too
// short to do it.)
func (b *inbox) touch() {
	b.mu.Lock()
	waiting := slices.Clone(b.msgs)
	if b.current != nil {
		waiting = append(waiting, b.current)
	}
	b.mu.Unlock()
	for _, m := range waiting {
		_ = m.InProgress()
	}
}

// empty reports whether no message waits.
func (b *inbox) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs) == 0
}

// drain takes every waiting message.
func (b *inbox) drain() []jetstream.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.msgs
	b.msgs = nil
	return out
}

// orderedSlot delivers one ordered queue: a fifo destination's, or one
// key partition's. Messages arrive from the consumer fetchAhead at a time
// and are delivered strictly one after another in stored order. Two
// things could break that order and are handled here:
//   - A slot that died (a crash, or another broker's) leaves messages
//     pending that JetStream redelivers only after their ack wait, while
//     newer ones flow. A slot therefore reads them back from the stream
//     and delivers them first, whenever the consumer's delivery sequence
//     shows that deliveries went elsewhere: always at its first message
//     (lastDSeq starts at 0), which is also when, with several brokers,
//     it knows it holds the pin; never before (the messages another
//     broker's live slot holds are not orphans).
//   - Redeliveries of messages already delivered (timed out while
//     waiting, or read back as above) are skipped: next is the first
//     stream sequence this slot has not delivered.
type orderedSlot struct {
	w        *Worker
	subject  string
	durable  string
	deliver  Deliverer
	next     uint64 // the first stream sequence not yet delivered
	lastDSeq uint64 // the last consumer delivery sequence seen
	pinID    string // this slot's pin, from the last message it got
	acks     *acks
}

// run delivers until ctx ends or the subscription ends by itself.
func (s *orderedSlot) run(ctx context.Context) error {
	w := s.w
	ahead := fetchAhead
	if w.Shared {
		ahead = sharedFetchAhead
	}
	cc := jetstream.ConsumerConfig{
		Durable: s.durable, FilterSubject: s.subject, AckPolicy: jetstream.AckAllPolicy,
		MaxAckPending: ahead, AckWait: w.Dest.ackWait(), MaxDeliver: -1,
	}
	// Pull one more than MaxAckPending, as a parallel worker does: a pull
	// request then stays open on the server while the slot works through
	// what it holds, so nats.go's skipped pull (see store.PullOptions)
	// cannot leave the slot with none open. With exactly ahead, a fifo
	// destination once went 2.9 s without a delivery under load in CI.
	pull := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(ahead + 1)}
	if w.Shared {
		// One slot delivers a queue across broker instances, in order.
		cc.PriorityPolicy, cc.PriorityGroups, cc.PinnedTTL = jetstream.PriorityPolicyPinned, []string{wire.DeliveryGroup}, orderedPinnedTTL
		pull = append(pull, jetstream.PullPriorityGroup(wire.DeliveryGroup))
	}
	cons, err := w.ensureConsumer(ctx, cc)
	if err != nil {
		return err
	}
	s.acks = &acks{log: w.Log.With().Str("destination", w.Dest.Name).Logger()}
	box := newInbox()
	sub, err := cons.Consume(box.push, slices.Concat(store.PullOptions, pull)...)
	if err != nil {
		return err
	}
	defer s.stop(sub, box)
	// Keep what waits behind a message being retried from timing out.
	go func() {
		touch := time.NewTicker(w.Dest.ackWait() / 3)
		defer touch.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-touch.C:
				s.acks.send()
				box.touch()
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Closed():
			return errors.New("a consumer's subscription ended")
		case <-box.ready:
			for ctx.Err() == nil {
				m, ok := box.pop()
				if !ok {
					break
				}
				s.take(ctx, cons, m)
				if box.empty() {
					s.acks.send()
				}
			}
		}
	}
}

// take delivers m unless it was delivered already, first delivering what
// a dead slot left pending if m shows that one did.
func (s *orderedSlot) take(ctx context.Context, cons jetstream.Consumer, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return // not a JetStream message: nothing to deliver or ack
	}
	m = ackLater{Msg: m, acks: s.acks, seq: meta.Sequence.Stream}
	if id := m.Headers().Get(store.PinIDHeader); id != "" {
		s.pinID = id
	}
	// A delivery sequence beyond the next expected: deliveries went to
	// another slot. (One at or below it was already counted when the
	// consumer's state was read, while it was on its way.)
	gap := meta.Sequence.Consumer > s.lastDSeq+1
	s.lastDSeq = max(s.lastDSeq, meta.Sequence.Consumer)
	if gap && !s.recoverHeld(ctx, cons) {
		requeue(m)
		return
	}
	if meta.Sequence.Stream < s.next {
		_ = m.Ack() // delivered already: a redelivery, or read back earlier
		return
	}
	if !s.w.deliver(ctx, s.deliver, m, true) {
		return // stopping: left queued
	}
	s.next = meta.Sequence.Stream + 1
}

// recoverHeld delivers, in order, every message of this queue between the
// consumer's ack floor and its last delivery that this slot has not
// delivered: messages a dead slot held. It returns false if ctx ended
// first; on other errors it retries, holding the line.
func (s *orderedSlot) recoverHeld(ctx context.Context, cons jetstream.Consumer) bool {
	for {
		err := s.readBack(ctx, cons)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.w.Log.Error().Str("destination", s.w.Dest.Name).Str("reason", err.Error()).
			Msg("delivery: reading back messages another run left unacknowledged failed; retrying")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (s *orderedSlot) readBack(ctx context.Context, cons jetstream.Consumer) error {
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	s.lastDSeq = max(s.lastDSeq, info.Delivered.Consumer)
	from, last := max(info.AckFloor.Stream+1, s.next), info.Delivered.Stream
	if info.NumAckPending == 0 || from > last {
		s.next = max(s.next, last+1)
		return nil
	}
	stream, err := s.w.JetStream.Stream(ctx, wire.StreamOut)
	if err != nil {
		return err
	}
	n := 0
	for seq := from; seq <= last; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(s.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // none left on this subject
		} else if err != nil {
			return fmt.Errorf("read message %d: %w", seq, err)
		}
		if m.Sequence > last {
			break
		}
		if !s.w.deliver(ctx, s.deliver, heldMsg{m}, true) {
			return ctx.Err()
		}
		n++
		seq = m.Sequence + 1
		s.next = seq
	}
	s.next = max(s.next, last+1)
	if n > 0 {
		s.w.Log.Info().Str("destination", s.w.Dest.Name).Uint64("from_seq", from).Uint64("to_seq", last).Int("messages", n).
			Msg("delivery: delivered again, in order, the messages an earlier run or another broker left unacknowledged")
	}
	return nil
}

// stop ends the subscription, gives up this slot's pin so that the next
// run takes over at once, and hands back what it held, in order, so that
// it is redelivered at once instead of after the ack wait.
func (s *orderedSlot) stop(cc jetstream.ConsumeContext, box *inbox) {
	cc.Stop()
	store.WaitClosed(cc)
	s.acks.send()
	// The acks sent so far reach the server before the pin is given up,
	// so that the next slot starts after them (what it cannot tell was
	// delivered, it delivers again).
	store.GiveUpPin(s.w.JetStream, wire.StreamOut, s.durable, wire.DeliveryGroup, s.pinID)
	for _, m := range box.drain() {
		requeue(m)
	}
}
