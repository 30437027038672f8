package routing

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Stream names and headers shared with package broker, which creates the
// streams and stores messages with these headers.
const (
	StreamIn  = "HL7_IN"
	StreamOut = "HL7_OUT"
	StreamDLQ = "HL7_DLQ"

	HeaderControlID = "HL7-Control-Id"
	HeaderType      = "HL7-Type"
	HeaderEvent     = "HL7-Event"
	HeaderListener  = "HL7-Listener"
	HeaderRoute     = "HL7-Route"
	HeaderInSeq     = "HL7-In-Sequence"

	routerConsumer = "router"
)

// Partitioning tells the router how a key-ordered destination splits its
// queue: by the value at Path into Partitions subjects.
type Partitioning struct {
	Path       hl7.Path
	Partitions int
}

// Router reads HL7_IN in stored order through a durable consumer, matches
// each message against every route, and publishes one copy per
// destination to HL7_OUT (hl7.out.<destination>[.<partition>]) with
// Nats-Msg-Id = input sequence + destination, so a redelivered input adds
// no duplicates. It acks the input only after every copy is stored. A
// message no route matches is logged as unrouted and, with UnroutedTo,
// sent there; it stays in HL7_IN's history either way.
type Router struct {
	JetStream  jetstream.JetStream
	Routes     []Route
	UnroutedTo string
	Partitions map[string]Partitioning // by destination; absent: one queue
	Log        zerolog.Logger
	// Sync, if set, returns once what was published so far is on disk;
	// the router calls it before acking an input, so that an input is
	// never marked done while its copies could still be lost.
	Sync func(context.Context) error
	// OnRouted, if set, is called after each input is acked, with the
	// destinations it went to (none: unrouted). For metrics and tests.
	OnRouted func(inSeq uint64, destinations []string)
}

// Run routes until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	cons, err := r.JetStream.CreateOrUpdateConsumer(ctx, StreamIn, jetstream.ConsumerConfig{
		Durable:       routerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1, // one at a time keeps the stored order
		AckWait:       30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("router consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { r.handle(ctx, msg) })
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	waitClosed(cc)
	return nil
}

// waitClosed waits for a consumer to stop, at most 2 s: with the server
// already gone, closing cannot be confirmed and must not hold up shutdown.
func waitClosed(cc jetstream.ConsumeContext) {
	select {
	case <-cc.Closed():
	case <-time.After(2 * time.Second):
	}
}

func (r *Router) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.Log.Error().Err(err).Msg("router: message without metadata; terminated")
		_ = msg.Term()
		return
	}
	h := msg.Headers()
	listener, typ, event := h.Get(HeaderListener), h.Get(HeaderType), h.Get(HeaderEvent)
	log := r.Log.With().Uint64("in_seq", meta.Sequence.Stream).Str("control_id", h.Get(HeaderControlID)).
		Str("type", typ+"^"+event).Str("listener", listener).Logger()

	var sent []string
	seen := map[string]bool{}
	for i := range r.Routes {
		route := &r.Routes[i]
		if !route.matches(listener, typ, event) {
			continue
		}
		out, err := route.apply(msg.Data())
		if err != nil {
			log.Error().Str("route", route.Name).Str("reason", err.Error()).Msg("transform failed; message sent to the dead-letter queue")
			why := nats.Header{HeaderDLQReason: {"transform of route " + route.Name + " failed: " + err.Error()},
				HeaderDLQAttempts: {"0"}, HeaderDLQTime: {time.Now().UTC().Format(time.RFC3339Nano)}}
			if !r.publish(ctx, msg, meta, h, why, "_transform:"+route.Name, route.Name, msg.Data(), "hl7.dlq._transform", log) {
				return
			}
			continue
		}
		for _, dest := range route.To {
			if seen[dest] {
				continue
			}
			seen[dest] = true
			if !r.publish(ctx, msg, meta, h, nil, dest, route.Name, out, r.outSubject(dest, out), log) {
				return
			}
			sent = append(sent, dest)
		}
	}
	if len(sent) == 0 {
		log.Warn().Str("unrouted_to", r.UnroutedTo).Msg("no route matched: unrouted")
		if r.UnroutedTo != "" {
			if !r.publish(ctx, msg, meta, h, nil, r.UnroutedTo, "_unrouted", msg.Data(), r.outSubject(r.UnroutedTo, msg.Data()), log) {
				return
			}
			sent = append(sent, r.UnroutedTo)
		}
	}
	if err := r.sync(ctx); err != nil {
		log.Error().Str("reason", err.Error()).Msg("router: copies not confirmed on disk; input retried in 1s")
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if err := msg.Ack(); err != nil {
		log.Warn().Err(err).Msg("router: ack failed; the input will be redelivered and deduplicated")
		return
	}
	if r.OnRouted != nil {
		r.OnRouted(meta.Sequence.Stream, sent)
	}
}

func (r *Router) sync(ctx context.Context) error {
	if r.Sync == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return r.Sync(ctx)
}

// publish stores one copy, with the input's headers plus extra, under
// Msg-Id <input sequence>:<dest>; on failure it naks the input for a
// retry and returns false.
func (r *Router) publish(ctx context.Context, in jetstream.Msg, meta *jetstream.MsgMetadata, h, extra nats.Header, dest, route string, data []byte, subject string, log zerolog.Logger) bool {
	out := &nats.Msg{Subject: subject, Data: data, Header: copyHeaders(h)}
	for k, v := range extra {
		out.Header[k] = v
	}
	out.Header.Set(HeaderRoute, route)
	out.Header.Set(HeaderInSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id := strconv.FormatUint(meta.Sequence.Stream, 10) + ":" + dest
	if _, err := r.JetStream.PublishMsg(pctx, out, jetstream.WithMsgID(id)); err != nil {
		log.Error().Str("destination", dest).Str("reason", err.Error()).Msg("router: storing the copy failed; input retried in 1s")
		_ = in.NakWithDelay(time.Second)
		return false
	}
	log.Debug().Str("destination", dest).Str("route", route).Msg("routed")
	return true
}

// outSubject is hl7.out.<dest>, or hl7.out.<dest>.<partition> for a
// key-ordered destination: the partition is a hash of the key field.
func (r *Router) outSubject(dest string, data []byte) string {
	p, ok := r.Partitions[dest]
	if !ok || p.Partitions < 2 {
		return OutSubject(dest)
	}
	var key []byte
	if m, err := hl7.Parse(data); err == nil {
		key, _ = m.Raw(p.Path)
	}
	h := fnv.New32a()
	h.Write(key)
	return fmt.Sprintf("%s.%d", OutSubject(dest), h.Sum32()%uint32(p.Partitions))
}

// copyHeaders copies a message's own headers, leaving out NATS's control
// headers (Nats-Msg-Id, Nats-Expected-Stream, ...): they belong to the
// publish that set them, and would make the next one fail or dedupe wrongly.
func copyHeaders(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			out[k] = v
		}
	}
	return out
}

// OutSubject is the HL7_OUT subject of a destination.
func OutSubject(dest string) string { return "hl7.out." + dest }
