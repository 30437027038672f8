// Package tracing gives each message one OpenTelemetry trace, from its
// receipt through store, route and each delivery attempt, carried across
// the streams in a W3C traceparent header. Off by default: then every
// call here returns at once, and nothing is allocated.
package tracing

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Span names, one per step of a message's path.
const (
	SpanReceive    = "hl7.receive"     // ingest: parse, checks, store, the ACK decided
	SpanStore      = "hl7.store"       // ingest: the durable store (a child of receive)
	SpanRoute      = "hl7.route"       // the router: routes matched, transforms, copies stored
	SpanDeliver    = "hl7.deliver"     // one delivery attempt and the downstream's answer
	SpanDeadLetter = "hl7.dead_letter" // a message parked in the dead-letter queue
)

// Attribute keys. None carries a field value of a message but the
// control ID, and that one only where the admin allows it (ControlIDs).
const (
	AttrListener    = attribute.Key("hl7.listener")
	AttrType        = attribute.Key("hl7.message_type") // ADT^A01
	AttrSize        = attribute.Key("hl7.size")
	AttrControlID   = attribute.Key("hl7.control_id")
	AttrAck         = attribute.Key("hl7.ack_code")
	AttrInSeq       = attribute.Key("hl7.in_seq")
	AttrDuplicate   = attribute.Key("hl7.duplicate")
	AttrRoutes      = attribute.Key("hl7.routes")
	AttrDestination = attribute.Key("hl7.destination")
	AttrDestType    = attribute.Key("hl7.destination_type")
	AttrAttempt     = attribute.Key("hl7.attempt")
	AttrOutcome     = attribute.Key("hl7.outcome")
	AttrCode        = attribute.Key("hl7.code")
)

// HeaderTraceParent and HeaderTraceState carry a span's context on a
// stored message (W3C Trace Context).
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

type state struct {
	tracer     trace.Tracer
	controlIDs bool
}

var current atomic.Pointer[state] // nil: off

var propagator = propagation.TraceContext{}

// Use turns tracing on with tp (nil: off). controlIDs: spans may carry
// MSH-10 (tracing.control_ids). It returns what undoes it, for tests.
func Use(tp trace.TracerProvider, controlIDs bool) (undo func()) {
	prev := current.Load()
	if tp == nil {
		current.Store(nil)
	} else {
		current.Store(&state{tracer: tp.Tracer("github.com/hl7broker/hl7broker"), controlIDs: controlIDs})
	}
	return func() { current.Store(prev) }
}

// On reports whether tracing is on.
func On() bool { return current.Load() != nil }

// noSpan is boxed once: a span returned while tracing is off costs no
// allocation.
var noSpan trace.Span = noop.Span{}

// Start starts a span named name, a child of ctx's span, if tracing is
// on; otherwise it returns ctx and a span that does nothing.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	st := current.Load()
	if st == nil {
		return ctx, noSpan
	}
	// A copy, so that the caller's attrs do not escape (and cost an
	// allocation) when tracing is off.
	return st.tracer.Start(ctx, name, trace.WithAttributes(slices.Clone(attrs)...))
}

// ControlID is the control-ID attribute, or an empty one (which the
// exporter drops) unless the admin allows control IDs in traces.
func ControlID(id string) attribute.KeyValue {
	if st := current.Load(); st == nil || !st.controlIDs || id == "" {
		return attribute.KeyValue{}
	}
	return AttrControlID.String(id)
}

// Fail marks span as failed with a reason (a code or a short text with
// no message content).
func Fail(span trace.Span, reason string) { span.SetStatus(codes.Error, reason) }

// Inject writes ctx's span context into h, if tracing is on.
func Inject(ctx context.Context, h nats.Header) {
	if current.Load() == nil {
		return
	}
	propagator.Inject(ctx, headerCarrier(h))
}

// Extract returns ctx with the span context h carries as its remote
// parent, if tracing is on and h carries one.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if current.Load() == nil || h == nil || h.Get(HeaderTraceParent) == "" {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// headerCarrier lets the propagator read and write NATS headers.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
