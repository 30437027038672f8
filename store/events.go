package store

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// EventLog appends journey events to HL7_EVENTS off the message path:
// Record only queues an event in memory; Run publishes them in batches
// (one stored record per batch, one JSON object a line), so recording
// costs a message's path a channel send, not a store round trip.
//
// Events are not synced to disk with the messages: a crash can lose the
// last batch (about 50 ms of journeys), never a message. A queue that
// stays full (the store down for long) drops events, counted in Dropped.
// A nil *EventLog records nothing.
type EventLog struct {
	js      jetstream.JetStream
	log     zerolog.Logger
	queue   chan wire.Event
	dropped atomic.Uint64
	batches atomic.Uint64
}

// eventQueue is how many events wait at most; eventBatch how many go in
// one record; eventLinger how long the first of a batch waits for more.
const (
	eventQueue  = 1 << 16
	eventBatch  = 1024
	eventLinger = 50 * time.Millisecond
)

// NewEventLog returns an EventLog publishing on js once Run runs.
func NewEventLog(js jetstream.JetStream, log zerolog.Logger) *EventLog {
	return &EventLog{js: js, log: log, queue: make(chan wire.Event, eventQueue)}
}

// Record queues e; it never blocks.
func (l *EventLog) Record(e wire.Event) {
	if l == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts events lost to a full queue or a store that failed.
func (l *EventLog) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Batches counts the records published.
func (l *EventLog) Batches() uint64 { return l.batches.Load() }

// Run publishes batches until ctx ends, then publishes what is queued.
func (l *EventLog) Run(ctx context.Context) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	n := 0
	flush := func(ctx context.Context) {
		if n == 0 {
			return
		}
		l.publish(ctx, buf.Bytes(), n)
		buf.Reset()
		n = 0
	}
	add := func(e wire.Event) {
		_ = enc.Encode(e) // plain fields: cannot fail
		n++
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case e := <-l.queue:
					add(e)
					if n == eventBatch {
						flush(context.Background())
					}
				default:
					flush(context.Background())
					return nil
				}
			}
		case e := <-l.queue:
			add(e)
			linger := time.NewTimer(eventLinger)
		fill:
			for n < eventBatch {
				select {
				case e := <-l.queue:
					add(e)
				case <-linger.C:
					break fill
				case <-ctx.Done():
					break fill
				}
			}
			linger.Stop()
			flush(ctx)
		}
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
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: wire.SubjectAudit, Data: data})
	return err
}
