package store

import (
	"cmp"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// EventLog appends journey events to HL7_EVENTS off the message path:
// Record only appends an event to a list in memory; Run publishes them
// in batches (one stored record per batch, one JSON object a line), so
// recording costs a message's path a lock and an append: no store round
// trip, and no goroutine woken for each event (only for a batch's first).
//
// Events are not synced to disk with the messages: a crash can lose the
// last batch (about 50 ms of journeys), never a message. A list that
// stays full (the store down for long) drops events, counted in Dropped.
// A nil *EventLog records nothing.
type EventLog struct {
	js  jetstream.JetStream
	log zerolog.Logger

	mu      sync.Mutex
	pending []wire.Event
	first   chan struct{} // a batch's first event came
	full    chan struct{} // a batch is full

	content int // bytes of payloads and responses pending (Event.Sent, Response)
	// contentBudget bounds content (0: eventContentQueued); a test
	// lowers it.
	contentBudget int

	dropped atomic.Uint64
	unkept  atomic.Uint64
	batches atomic.Uint64
}

// eventQueue is how many events wait at most; eventBatch how many go in
// one record; eventLinger how long the first of a batch waits for more.
// eventContentQueued bounds the payloads and responses they hold
// (past it, events go without them); eventBatchBytes closes a batch
// early, well under the smallest max_payload (1 MB) even after an event
// of the largest kept payload (wire.SentKept, in base64).
const (
	eventQueue         = 1 << 16
	eventBatch         = 1024
	eventLinger        = 50 * time.Millisecond
	eventContentQueued = 16 << 20
	eventBatchBytes    = 512 << 10
)

// NewEventLog returns an EventLog publishing on js once Run runs.
func NewEventLog(js jetstream.JetStream, log zerolog.Logger) *EventLog {
	return &EventLog{js: js, log: log, first: make(chan struct{}, 1), full: make(chan struct{}, 1)}
}

// Record queues e; it never blocks.
func (l *EventLog) Record(e wire.Event) {
	if l == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	l.mu.Lock()
	n := len(l.pending)
	if n < eventQueue {
		if e.HasContent() {
			if l.content+len(e.Sent)+len(e.Response) > cmp.Or(l.contentBudget, eventContentQueued) {
				e = e.WithoutContent() // the journey matters more than the payload shown beside it
				l.unkept.Add(1)
			}
			l.content += len(e.Sent) + len(e.Response)
		}
		l.pending = append(l.pending, e)
	}
	l.mu.Unlock()
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	switch {
	case n >= eventQueue:
		l.dropped.Add(1)
	case n == 0:
		signal(l.first)
	case n+1 == eventBatch:
		signal(l.full)
	}
}

// Dropped counts events lost to a full queue or a store that failed.
func (l *EventLog) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Unkept counts events that went without their payload as sent and
// response because too many bytes of them were waiting.
func (l *EventLog) Unkept() uint64 {
	if l == nil {
		return 0
	}
	return l.unkept.Load()
}

// Batches counts the records published.
func (l *EventLog) Batches() uint64 { return l.batches.Load() }

// Run publishes batches until ctx ends, then publishes what is queued.
func (l *EventLog) Run(ctx context.Context) error {
	var buf []byte
	var spare []wire.Event
	publishAll := func(ctx context.Context) {
		l.mu.Lock()
		all := l.pending
		l.pending = spare[:0] // the list of the batch before: done with
		l.content = 0
		l.mu.Unlock()
		events := all
		for len(events) > 0 {
			n := min(len(events), eventBatch)
			buf = buf[:0]
			kept := 0
			for i, e := range events[:n] {
				if len(buf) >= eventBatchBytes {
					n = i
					break
				}
				line, err := wire.AppendEvent(buf, e)
				if err != nil { // a time or number JSON cannot hold: never made here
					l.dropped.Add(1)
					continue
				}
				buf = append(line, '\n')
				kept++
			}
			if kept > 0 {
				l.publish(ctx, buf, kept) // returns once stored or given up: buf is free again
			}
			events = events[n:]
		}
		clear(all) // no payload outlives its batch in the spare list
		spare = all
	}
	linger := time.NewTimer(eventLinger)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			publishAll(context.Background())
			return nil
		case <-l.first:
		case <-l.full:
		}
		linger.Reset(eventLinger)
		select {
		case <-linger.C:
		case <-l.full:
			linger.Stop()
		case <-ctx.Done():
			linger.Stop()
		}
		publishAll(ctx)
	}
}

// publish stores one batch, retrying a few times; then it gives up on it,
// counted, so a store that is down does not hold every later journey.
func (l *EventLog) publish(ctx context.Context, data []byte, n int) {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := l.js.PublishMsg(pctx, &nats.Msg{Subject: wire.SubjectEvents, Data: data})
		cancel()
		if err == nil {
			l.batches.Add(1)
			return
		}
		if attempt == 3 || ctx.Err() != nil {
			l.dropped.Add(uint64(n))
			l.log.Error().Int("events", n).Str("reason", err.Error()).Msg("journey events could not be stored; dropped")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
}

// AppendAudit stores one audit entry and waits until it is stored.
func AppendAudit(ctx context.Context, js jetstream.JetStream, e wire.AuditEntry) error {
	data, err := json.Marshal(e.Bounded())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: wire.SubjectAudit, Data: data})
	return err
}
