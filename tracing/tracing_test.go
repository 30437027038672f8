package tracing

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A span's context written into a stored message's headers is read back
// on the other side of the stream as the parent of the next step's span.
func TestHeadersCarryTheTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer Use(tp, false)()
	require.True(t, On())

	ctx, span := Start(context.Background(), SpanReceive, AttrListener.String("adt"), ControlID("C1"))
	h := nats.Header{}
	Inject(ctx, h)
	span.End()
	require.NotEmpty(t, h.Get(HeaderTraceParent))

	_, next := Start(Extract(context.Background(), h), SpanRoute)
	next.End()
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	require.Equal(t, spans[0].SpanContext.TraceID(), spans[1].SpanContext.TraceID())
	require.Equal(t, spans[0].SpanContext.SpanID(), spans[1].Parent.SpanID())
	for _, kv := range spans[0].Attributes {
		require.NotEqual(t, AttrControlID, kv.Key, "no control ID unless allowed")
	}
}

// Off, nothing is written to headers and nothing is allocated.
func TestOffDoesNothing(t *testing.T) {
	defer Use(nil, false)()
	h := nats.Header{}
	allocs := testing.AllocsPerRun(100, func() {
		ctx, span := Start(context.Background(), SpanDeliver, AttrAttempt.Int(1))
		Inject(ctx, h)
		_ = Extract(ctx, h)
		span.End()
	})
	require.Empty(t, h)
	require.Zero(t, allocs)
}

// BenchmarkOff is what the tracing calls on a message's path cost when
// tracing is off.
func BenchmarkOff(b *testing.B) {
	defer Use(nil, false)()
	h := nats.Header{}
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := Start(context.Background(), SpanDeliver)
		Inject(ctx, h)
		span.End()
	}
}
