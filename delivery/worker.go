package delivery

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Destination is one downstream system and how to deliver to it.
type Destination struct {
	Name string
	Type string // mllp, http, file...: names the delivery step in reasons
	// NewDeliverer makes a deliverer for one delivery slot: the fifo
	// queue, one partition, or one of the parallel slots. Each has its own
	// (an MLLP connection carries one message at a time).
	NewDeliverer func() (Deliverer, error)
	Ordering     string // fifo | parallel | key
	Concurrency  int    // parallel
	Partitions   int    // key
	MaxAttempts  int
	Backoff      []time.Duration // the last one repeats
	OnReject     string          // dead_letter | retry
	// Timeout bounds one attempt. The queue's ack wait is Timeout plus a
	// margin: long enough for an attempt, short enough that a message left
	// pending by a crash or restart is redelivered soon after.
	Timeout time.Duration
}

// ackWait is how long JetStream waits before redelivering a message the
// worker holds; between attempts the worker reports progress.
func (d *Destination) ackWait() time.Duration { return max(d.Timeout, time.Second) + 5*time.Second }

// Worker delivers one destination's queue from HL7_OUT. fifo: one message
// at a time in stored order, a failing message retried in place (holding
// the line, as an interface engine's queue does) until it is delivered or
// parked in HL7_DLQ after MaxAttempts. key: the same per partition.
// parallel: Concurrency messages at once, no order.
type Worker struct {
	JetStream jetstream.JetStream
	Dest      Destination
	Log       zerolog.Logger
	// Sync, if set, returns once what was published so far is on disk;
	// called before a dead-lettered message leaves the queue.
	Sync func(context.Context) error
	// OnDone, if set, is called when a message leaves the queue:
	// "delivered" or "dead_lettered". For metrics and tests.
	OnDone func(outcome string, h nats.Header)
	// OnAttempt, if set, is called after each delivery attempt.
	OnAttempt func(res Result, took time.Duration)
	// Events, if set, records each attempt and the outcome in the
	// message's journey.
	Events *store.EventLog
}

// Run delivers until ctx ends. A message being retried when ctx ends is
// left in HL7_OUT (not acknowledged) and redelivered on the next start.
func (w *Worker) Run(ctx context.Context) error {
	type slot struct {
		subject, durable string
		pending          int
	}
	var slots []slot
	base := wire.OutSubject(w.Dest.Name)
	switch w.Dest.Ordering {
	case "key":
		for p := range w.Dest.Partitions {
			slots = append(slots, slot{wire.PartitionSubject(w.Dest.Name, p), wire.PartitionConsumer(w.Dest.Name, p), 1})
		}
	case "parallel":
		slots = []slot{{base, wire.DeliveryConsumer(w.Dest.Name), max(1, w.Dest.Concurrency)}}
	default:
		slots = []slot{{base, wire.DeliveryConsumer(w.Dest.Name), 1}}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var stops []func()
	var ended []<-chan struct{}
	// stopAll stops every slot started so far and waits for their
	// deliveries (each left queued): a setup that fails partway leaves
	// nothing consuming, with closed deliverers, behind it.
	stopAll := func() {
		cancel()
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	}
	for _, s := range slots {
		cons, err := w.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamOut, jetstream.ConsumerConfig{
			Durable: s.durable, FilterSubject: s.subject, AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: s.pending, AckWait: w.Dest.ackWait(), MaxDeliver: -1,
		})
		if err != nil {
			stopAll()
			return fmt.Errorf("destination %s: consumer: %w", w.Dest.Name, err)
		}
		// One deliverer per message in flight.
		free := make(chan Deliverer, s.pending)
		for range s.pending {
			d, err := w.Dest.NewDeliverer()
			if err != nil {
				stopAll()
				return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
			}
			defer d.Close()
			free <- d
		}
		// Pull one more than MaxAckPending: a pull request then stays open
		// on the server while the last message is delivered, and the next
		// is handed out on it as soon as that one is acked. With exactly
		// MaxAckPending, each message ended its request and the next pull
		// raced nats.go's bookkeeping (see store.PullOptions): a fifo queue
		// stalled for a second or more at a time under load.
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			d := <-free
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- d }()
				w.deliver(ctx, d, msg)
			}()
		}, slices.Concat(store.PullOptions, []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(s.pending + 1)})...)
		if err != nil {
			stopAll()
			return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
		}
		stops = append(stops, func() { cc.Stop(); store.WaitClosed(cc) })
		ended = append(ended, cc.Closed())
	}
	// Run until ctx ends, or until a slot's subscription ends by itself
	// (its consumer vanished, as when the server's JetStream restarts):
	// then stop the rest and return, to be started again by whoever
	// supervises the worker.
	closed := make(chan struct{})
	for _, e := range ended {
		go func() {
			select {
			case <-e:
				select {
				case closed <- struct{}{}:
				case <-ctx.Done():
				}
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		stopAll()
		return nil
	case <-closed:
		stopAll()
		return fmt.Errorf("destination %s: a consumer's subscription ended", w.Dest.Name)
	}
}

// deliver makes attempts until the message is delivered, rejected for
// good, out of attempts, or ctx ends.
func (w *Worker) deliver(ctx context.Context, d Deliverer, msg jetstream.Msg) {
	h := msg.Headers()
	log := w.Log.With().Str("destination", w.Dest.Name).Str("control_id", h.Get(wire.HeaderControlID)).
		Str("type", h.Get(wire.HeaderType)+"^"+h.Get(wire.HeaderEvent)).Int("size", len(msg.Data())).Logger()
	inSeq, _ := strconv.ParseUint(h.Get(wire.HeaderInSeq), 10, 64)
	dm := Message{Data: msg.Data(), ControlID: h.Get(wire.HeaderControlID), InSeq: inSeq}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, panicked := deliverSafely(ctx, d, dm)
		if panicked {
			log.Error().Int("attempt", attempt).Str("step", w.Dest.Type+" delivery").Msg("delivery panicked; the message goes to the dead-letter queue")
			w.deadLetter(ctx, msg, log, fmt.Sprintf("the %s delivery step panicked (a bug in hl7broker: please report it)", w.Dest.Type), attempt)
			return
		}
		took := time.Since(start)
		if w.OnAttempt != nil {
			w.OnAttempt(res, took)
		}
		if ctx.Err() != nil {
			requeue(msg)
			return
		}
		ev := wire.Event{Kind: wire.EventAttempt, At: start, Message: inSeq, Destination: w.Dest.Name, Attempt: attempt,
			Millis: float64(took.Microseconds()) / 1000, Outcome: res.Outcome.String(), Code: res.Code, Reason: res.Reason}
		if res.Outcome == Delivered {
			ev.Kind = wire.EventDelivered
		}
		w.Events.Record(ev)
		switch {
		case res.Outcome == Delivered:
			if err := msg.Ack(); err != nil {
				log.Warn().Err(err).Msg("delivered, but the queue ack failed: it may be delivered again")
			}
			log.Debug().Int("attempt", attempt).Dur("latency", time.Since(start)).Msg("delivered")
			w.done("delivered", h)
			return
		case res.Outcome == Rejected && w.Dest.OnReject != "retry":
			w.deadLetter(ctx, msg, log, "rejected: "+res.Reason, attempt)
			return
		case attempt >= w.Dest.MaxAttempts:
			w.deadLetter(ctx, msg, log, fmt.Sprintf("gave up after %d attempts: %s", attempt, res.Reason), attempt)
			return
		}
		wait := w.backoff(attempt)
		log.Warn().Int("attempt", attempt).Str("reason", res.Reason).Dur("retry_in", wait).Msg("delivery failed; will retry")
		if !waitInProgress(ctx, msg, wait, w.Dest.ackWait()) {
			requeue(msg)
			return
		}
	}
}

// deliverSafely is one attempt with a panic recovered: a deliverer's bug
// on one message must not take the broker down, nor block the queue.
func deliverSafely(ctx context.Context, d Deliverer, m Message) (res Result, panicked bool) {
	defer func() {
		if recover() != nil {
			res, panicked = Result{}, true
		}
	}()
	return d.Deliver(ctx, m), false
}

// requeue hands a message back when stopping, so that the next start
// delivers it at once instead of after the ack wait.
func requeue(msg jetstream.Msg) { _ = msg.Nak() }

func (w *Worker) backoff(attempt int) time.Duration {
	b := w.Dest.Backoff
	if len(b) == 0 {
		return time.Second
	}
	return b[min(attempt-1, len(b)-1)]
}

// waitInProgress waits d, telling JetStream the message is still being
// worked on so it is not redelivered elsewhere; false if ctx ended.
func waitInProgress(ctx context.Context, msg jetstream.Msg, d, ackWait time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(ackWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			_ = msg.InProgress()
		}
	}
}

// deadLetter stores the message in HL7_DLQ with why, then removes it from
// the queue. If storing fails it stays queued and is retried.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, log zerolog.Logger, reason string, attempts int) {
	meta, _ := msg.Metadata()
	out := &nats.Msg{Subject: wire.DLQSubject(w.Dest.Name), Data: msg.Data(), Header: wire.OwnHeaders(msg.Headers())}
	out.Header.Set(wire.HeaderDestination, w.Dest.Name)
	out.Header.Set(wire.HeaderDLQReason, reason)
	out.Header.Set(wire.HeaderDLQAttempts, strconv.Itoa(attempts))
	out.Header.Set(wire.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	seq, _ := strconv.ParseUint(msg.Headers().Get(wire.HeaderInSeq), 10, 64)
	if meta != nil {
		seq = meta.Sequence.Stream
	}
	id := wire.DeadLetterID(w.Dest.Name, seq)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := w.JetStream.PublishMsg(pctx, out, jetstream.WithMsgID(id))
	if err == nil && w.Sync != nil {
		err = w.Sync(pctx)
	}
	if err != nil {
		log.Error().Str("reason", err.Error()).Msg("dead-lettering failed; the message stays queued")
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Ack()
	inSeq, _ := strconv.ParseUint(msg.Headers().Get(wire.HeaderInSeq), 10, 64)
	w.Events.Record(wire.Event{Kind: wire.EventDeadLettered, Message: inSeq, Destination: w.Dest.Name, Attempt: attempts, Reason: reason, DLQ: ack.Sequence})
	log.Error().Int("attempts", attempts).Str("reason", reason).Msg("message dead-lettered")
	w.done("dead_lettered", out.Header)
}

func (w *Worker) done(outcome string, h nats.Header) {
	if w.OnDone != nil {
		w.OnDone(outcome, h)
	}
}
