package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Destination is one downstream system and how to deliver to it.
type Destination struct {
	Name string
	Type string // mllp, http, file...: names the delivery step in reasons
	// NewDeliverer makes a deliverer for one delivery slot: the fifo
	// queue, one partition, or one of the parallel slots. Each has its own
	// (an MLLP connection carries one message at a time).
	NewDeliverer func() (Deliverer, error)
	Ordering     string          // fifo | parallel | key
	Concurrency  int             // parallel
	Partitions   int             // key
	MaxAttempts  int             // < 1: until delivered (config.RetryForever)
	Backoff      []time.Duration // the last one repeats
	OnReject     string          // dead_letter | retry
	// Timeout bounds one attempt. The queue's ack wait is Timeout plus a
	// margin, at most 10 s (ackWait): a message left pending by a crash or
	// restart is redelivered soon after.
	Timeout time.Duration
}

// ackWait is how long JetStream waits before redelivering a message the
// worker holds; between attempts the worker reports progress.
//
// A message being delivered is kept in progress (store.KeepInProgress),
// so the ack wait need not outlast an attempt: at most 10 s, which is how
// long the messages a crashed broker held stop an ordered queue.
func (d *Destination) ackWait() time.Duration {
	return min(max(d.Timeout, time.Second)+5*time.Second, 10*time.Second)
}

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
	// Shared: other broker instances may run this destination's worker on
	// the same store (an external NATS). Ordered queues then join a pinned
	// priority group, so that one worker at a time delivers each.
	Shared bool
}

// Run delivers until ctx ends. A message being retried when ctx ends is
// left in HL7_OUT (not acknowledged) and redelivered on the next start.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct{ subject, durable string }
	var slots []slot
	switch w.Dest.Ordering {
	case "parallel":
		return w.runParallel(ctx)
	case "key":
		for p := range w.Dest.Partitions {
			slots = append(slots, slot{wire.PartitionSubject(w.Dest.Name, p), wire.PartitionConsumer(w.Dest.Name, p)})
		}
	default:
		slots = []slot{{wire.OutSubject(w.Dest.Name), wire.DeliveryConsumer(w.Dest.Name)}}
	}
	// Every slot runs until ctx ends; the first to fail stops the rest,
	// and Run returns its error to whoever supervises the worker (as when
	// the server's JetStream restarted and a consumer vanished).
	errs := make(chan error, len(slots))
	var wg sync.WaitGroup
	for _, s := range slots {
		d, err := w.Dest.NewDeliverer()
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.Close()
			q := &orderedSlot{w: w, subject: s.subject, durable: s.durable, deliver: d}
			if err := q.run(ctx); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
	default:
		return nil
	}
}

// runParallel delivers with Concurrency messages in flight, in no order.
func (w *Worker) runParallel(ctx context.Context) error {
	pending := max(1, w.Dest.Concurrency)
	cons, err := w.ensureConsumer(ctx, jetstream.ConsumerConfig{
		Durable: wire.DeliveryConsumer(w.Dest.Name), FilterSubject: wire.OutSubject(w.Dest.Name), AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: pending, AckWait: w.Dest.ackWait(), MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
	}
	// One deliverer per message in flight.
	free := make(chan Deliverer, pending)
	for range pending {
		d, err := w.Dest.NewDeliverer()
		if err != nil {
			return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
		}
		defer d.Close()
		free <- d
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	// Pull one more than MaxAckPending: a pull request then stays open
	// on the server while the last message is delivered, and the next
	// is handed out on it as soon as that one is acked (see
	// store.PullOptions).
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		d := <-free
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { free <- d }()
			w.deliver(ctx, d, msg, false)
		}()
	}, slices.Concat(store.PullOptions, []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(pending + 1)})...)
	if err != nil {
		cancel()
		return fmt.Errorf("destination %s: %w", w.Dest.Name, err)
	}
	defer func() { cc.Stop(); store.WaitClosed(cc) }()
	// On the way out: ctx ends first, so that deliveries being retried
	// stop (each left queued), then the subscription, then the wait for
	// them, then the deliverers close.
	defer cancel()
	select {
	case <-ctx.Done():
		return nil
	case <-cc.Closed():
		return fmt.Errorf("destination %s: a consumer's subscription ended", w.Dest.Name)
	}
}

// ensureConsumer creates or updates one of the queue's consumers. An
// ordered queue's acks are cumulative and a parallel one's are not: a
// queue whose ordering changed, or made by an hl7broker before ordered
// queues acknowledged cumulatively, is re-created from its ack floor, and
// the log says so.
func (w *Worker) ensureConsumer(ctx context.Context, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, remade, unacked, err := store.EnsureConsumer(ctx, w.JetStream, wire.StreamOut, cc)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	if remade {
		w.Log.Info().Str("destination", w.Dest.Name).Str("consumer", cc.Durable).Str("ack_policy", cc.AckPolicy.String()).
			Int("handed_out_again", unacked).Msg("delivery: the queue's consumer was re-created from its ack floor for its ack policy; messages it had handed out without an ack are delivered again")
	}
	return cons, nil
}

// deliver makes attempts until the message is delivered, rejected for
// good, out of attempts, or ctx ends. It returns true when the message
// left the queue (delivered or dead-lettered), false when it was left
// queued because ctx ended. holdLine is set by ordered slots: a
// dead-lettering that fails is retried in place (nothing may overtake the
// message), and the slot itself keeps the message in progress (its inbox's
// touch, every ackWait/3), so no timer is set per attempt; otherwise the
// message is handed back to be redelivered.
func (w *Worker) deliver(ctx context.Context, d Deliverer, msg queued, holdLine bool) bool {
	h := msg.Headers()
	inSeq, _ := strconv.ParseUint(h.Get(wire.HeaderInSeq), 10, 64)
	received, _ := time.Parse(time.RFC3339Nano, h.Get(wire.HeaderReceivedAt))
	dm := Message{Data: msg.Data(), ControlID: h.Get(wire.HeaderControlID), InSeq: inSeq, ReceivedAt: received, Vars: wire.Vars(h)}
	parent := tracing.Extract(ctx, h)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		actx, span := tracing.Start(parent, tracing.SpanDeliver, tracing.AttrDestination.String(w.Dest.Name),
			tracing.AttrDestType.String(w.Dest.Type), tracing.AttrAttempt.Int(attempt))
		stop := func() {}
		if !holdLine {
			stop = store.KeepInProgress([]queued{msg}, w.Dest.ackWait()/3)
		}
		res, panicked := deliverSafely(actx, d, dm)
		res.Reason = secret.Scrub(res.Reason) // a reason may quote a URL with a secret in its path
		stop()
		w.endAttempt(span, res, panicked)
		if panicked {
			w.msgLog(msg).Error().Int("attempt", attempt).Str("step", w.Dest.Type+" delivery").Msg("delivery panicked; the message goes to the dead-letter queue")
			return w.deadLetterHolding(ctx, msg, fmt.Sprintf("the %s delivery step panicked (a bug in hl7broker: please report it)", w.Dest.Type), attempt, holdLine)
		}
		took := time.Since(start)
		if w.OnAttempt != nil {
			w.OnAttempt(res, took)
		}
		if ctx.Err() != nil {
			requeue(msg)
			return false
		}
		ev := wire.Event{Kind: wire.EventAttempt, At: start, Message: inSeq, Destination: w.Dest.Name, Attempt: attempt,
			Millis: float64(took.Microseconds()) / 1000, Outcome: res.Outcome.String(), Code: res.Code, Reason: res.Reason}
		if res.Outcome == Delivered {
			ev.Kind = wire.EventDelivered
			ev.SHA256 = sentSum(res.Sent, dm.Data)
		}
		keepSent(&ev, res)
		w.Events.Record(ev)
		switch {
		case res.Outcome == Delivered:
			if err := msg.Ack(); err != nil {
				w.msgLog(msg).Warn().Err(err).Msg("delivered, but the queue ack failed: it may be delivered again")
			}
			if e := w.Log.Debug(); e.Enabled() {
				e.Str("destination", w.Dest.Name).Str("control_id", dm.ControlID).Int("attempt", attempt).Dur("latency", took).Msg("delivered")
			}
			w.done("delivered", h)
			return true
		case res.Outcome == Rejected && w.Dest.OnReject != "retry":
			return w.deadLetterHolding(ctx, msg, "rejected: "+res.Reason, attempt, holdLine)
		case w.Dest.MaxAttempts > 0 && attempt >= w.Dest.MaxAttempts: // else (RetryForever) until delivered
			return w.deadLetterHolding(ctx, msg, fmt.Sprintf("gave up after %d attempts: %s", attempt, res.Reason), attempt, holdLine)
		}
		wait := w.backoff(attempt)
		w.msgLog(msg).Warn().Int("attempt", attempt).Str("reason", res.Reason).Dur("retry_in", wait).Msg("delivery failed; will retry")
		if !waitInProgress(ctx, msg, wait, w.Dest.ackWait()) {
			requeue(msg)
			return false
		}
	}
}

// sentSum is the SHA-256 (hex) of what a destination received: the
// payload as sent, or the copy as queued when it was sent as it is.
func sentSum(sent, data []byte) string {
	if sent == nil {
		sent = data
	}
	sum := sha256.Sum256(sent)
	return hex.EncodeToString(sum[:])
}

// keepSent puts in ev what res says was sent and answered, each bounded
// (wire.SentKept, wire.ResponseKept).
func keepSent(ev *wire.Event, res Result) {
	ev.SentName = res.SentName
	if ev.Sent = res.Sent; len(ev.Sent) > wire.SentKept {
		ev.Sent, ev.SentSize = ev.Sent[:wire.SentKept], len(ev.Sent)
	}
	ev.Response = res.Response[:min(len(res.Response), wire.ResponseKept)]
}

// endAttempt ends an attempt's span with its outcome (codes only).
func (w *Worker) endAttempt(span trace.Span, res Result, panicked bool) {
	if !span.IsRecording() {
		return
	}
	outcome := res.Outcome.String()
	if panicked {
		outcome = "panicked"
	}
	span.SetAttributes(tracing.AttrOutcome.String(outcome), tracing.AttrCode.String(res.Code))
	if panicked || res.Outcome != Delivered {
		tracing.Fail(span, outcome)
	}
	span.End()
}

// msgLog is a logger that names the message (no content): built only
// when something is logged about it.
func (w *Worker) msgLog(msg queued) *zerolog.Logger {
	h := msg.Headers()
	l := w.Log.With().Str("destination", w.Dest.Name).Str("control_id", h.Get(wire.HeaderControlID)).
		Str("type", h.Get(wire.HeaderType)+"^"+h.Get(wire.HeaderEvent)).Int("size", len(msg.Data())).Logger()
	return &l
}

// deadLetterHolding dead-letters msg; if that fails, an ordered slot
// (holdLine) tries again every deadLetterRetry until it works or ctx
// ends, and any other hands the message back to be redelivered later.
func (w *Worker) deadLetterHolding(ctx context.Context, msg queued, reason string, attempts int, holdLine bool) bool {
	for {
		if w.deadLetter(ctx, msg, reason, attempts) {
			return true
		}
		if !holdLine {
			_ = msg.NakWithDelay(deadLetterRetry)
			return true // it left this worker's hands: redelivered later
		}
		if !waitInProgress(ctx, msg, deadLetterRetry, w.Dest.ackWait()) {
			requeue(msg)
			return false
		}
	}
}

// deadLetterRetry is how long to wait before trying to dead-letter a
// message again after storing it in HL7_DLQ failed.
const deadLetterRetry = 5 * time.Second

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
func requeue(msg queued) { _ = msg.Nak() }

func (w *Worker) backoff(attempt int) time.Duration {
	b := w.Dest.Backoff
	if len(b) == 0 {
		return time.Second
	}
	return b[min(attempt-1, len(b)-1)]
}

// waitInProgress waits d, telling JetStream the message is still being
// worked on so it is not redelivered elsewhere; false if ctx ended.
func waitInProgress(ctx context.Context, msg queued, d, ackWait time.Duration) bool {
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
// the queue. If storing fails it returns false and the message stays
// queued.
func (w *Worker) deadLetter(ctx context.Context, msg queued, reason string, attempts int) bool {
	meta, _ := msg.Metadata()
	out := &nats.Msg{Subject: wire.DLQSubject(w.Dest.Name), Data: msg.Data(), Header: wire.OwnHeaders(msg.Headers())}
	wire.Letter{Destination: w.Dest.Name, Reason: reason, Attempts: attempts, At: time.Now()}.Mark(out.Header)
	seq, _ := strconv.ParseUint(msg.Headers().Get(wire.HeaderInSeq), 10, 64)
	if meta != nil {
		seq = meta.Sequence.Stream
	}
	id := wire.DeadLetterID(w.Dest.Name, seq)
	pctx, cancel := context.WithTimeout(ctx, store.PublishTimeout)
	defer cancel()
	ack, err := w.JetStream.PublishMsg(pctx, out, jetstream.WithMsgID(id))
	if err == nil && w.Sync != nil {
		err = w.Sync(pctx)
	}
	if err != nil {
		w.msgLog(msg).Error().Str("reason", err.Error()).Msg("dead-lettering failed; the message stays queued")
		return false
	}
	_ = msg.Ack()
	if tracing.On() {
		_, span := tracing.Start(tracing.Extract(ctx, msg.Headers()), tracing.SpanDeadLetter, tracing.AttrDestination.String(w.Dest.Name),
			tracing.AttrAttempt.Int(attempts))
		span.End()
	}
	inSeq, _ := strconv.ParseUint(msg.Headers().Get(wire.HeaderInSeq), 10, 64)
	w.Events.Record(wire.Event{Kind: wire.EventDeadLettered, Message: inSeq, Destination: w.Dest.Name, Attempt: attempts, Reason: reason, DLQ: ack.Sequence})
	w.msgLog(msg).Error().Int("attempts", attempts).Str("reason", reason).Msg("message dead-lettered")
	w.done("dead_lettered", out.Header)
	return true
}

func (w *Worker) done(outcome string, h nats.Header) {
	if w.OnDone != nil {
		w.OnDone(outcome, h)
	}
}
