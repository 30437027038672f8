package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// One message, one trace: receive (with store as its child), route, and
// each delivery attempt (the first answered AE, the second AA), linked
// through the traceparent header the stored message and its copy carry.
// No attribute holds a field value; the control ID only when allowed.
func TestOneTracePerMessage(t *testing.T) {
	for _, allowIDs := range []bool{false, true} {
		t.Run(fmt.Sprintf("control_ids=%v", allowIDs), func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(tracing.Use(tp, allowIDs))

			calls := 0 // the endpoint's handler runs under its lock
			emr := newEndpoint(t, "", func(int, []byte) hl7.Outcome {
				if calls++; calls == 1 {
					return hl7.Errored
				}
				return hl7.Accepted
			})
			cfg := baseConfig(t)
			cfg.Routes = []config.RouteConfig{{Name: "adt", From: []string{"adt"}, To: []string{"emr"}}}
			cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
			p := startPipeline(t, cfg)
			require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("TRACE-1", "MRN-777", "A01")))

			var spans tracetest.SpanStubs
			testkit.WaitFor(t, 10*time.Second, func() error {
				spans = exp.GetSpans()
				n := 0
				for _, s := range spans {
					if s.Name == tracing.SpanDeliver {
						n++
					}
				}
				if n < 2 {
					return fmt.Errorf("%d of 2 delivery attempts traced (%d spans)", n, len(spans))
				}
				return nil
			})
			byName := map[string][]tracetest.SpanStub{}
			for _, s := range spans {
				byName[s.Name] = append(byName[s.Name], s)
			}
			require.Len(t, byName[tracing.SpanReceive], 1)
			require.Len(t, byName[tracing.SpanStore], 1)
			require.Len(t, byName[tracing.SpanRoute], 1)
			receive, store, route := byName[tracing.SpanReceive][0], byName[tracing.SpanStore][0], byName[tracing.SpanRoute][0]
			trace := receive.SpanContext.TraceID()
			for _, s := range spans {
				assert.Equal(t, trace, s.SpanContext.TraceID(), "%s: one trace for the message", s.Name)
			}
			assert.Equal(t, receive.SpanContext.SpanID(), store.Parent.SpanID(), "store is a step of receive")
			assert.Equal(t, receive.SpanContext.SpanID(), route.Parent.SpanID(), "route follows from receive, across HL7_IN")
			assert.True(t, route.Parent.IsRemote())
			for _, d := range byName[tracing.SpanDeliver] {
				assert.Equal(t, route.SpanContext.SpanID(), d.Parent.SpanID(), "each attempt follows from route, across HL7_OUT")
			}
			attrs := func(s tracetest.SpanStub) map[string]string {
				m := map[string]string{}
				for _, kv := range s.Attributes {
					m[string(kv.Key)] = kv.Value.Emit()
				}
				return m
			}
			assert.Equal(t, "adt", attrs(receive)[string(tracing.AttrListener)])
			assert.Equal(t, "ADT^A01", attrs(receive)[string(tracing.AttrType)])
			assert.Equal(t, "AA", attrs(receive)[string(tracing.AttrAck)])
			first, second := byName[tracing.SpanDeliver][0], byName[tracing.SpanDeliver][1]
			if attrs(first)[string(tracing.AttrAttempt)] != "1" {
				first, second = second, first
			}
			assert.Equal(t, "AE", attrs(first)[string(tracing.AttrCode)])
			assert.Equal(t, "retry", attrs(first)[string(tracing.AttrOutcome)])
			assert.Equal(t, "AA", attrs(second)[string(tracing.AttrCode)])
			assert.Equal(t, "delivered", attrs(second)[string(tracing.AttrOutcome)])
			assert.Equal(t, "emr", attrs(second)[string(tracing.AttrDestination)])

			for _, s := range spans {
				a := attrs(s)
				_, hasID := a[string(tracing.AttrControlID)]
				if s.Name == tracing.SpanReceive || s.Name == tracing.SpanRoute {
					assert.Equal(t, allowIDs, hasID, "%s: the control ID only when tracing.control_ids allows it", s.Name)
				}
				for k, v := range a {
					for _, phi := range []string{"MRN-777", "Müller", "José", "19610615"} {
						assert.False(t, strings.Contains(v, phi), "%s: attribute %s holds a field value", s.Name, k)
					}
				}
			}
		})
	}
}

// Off (the default), nothing is traced and stored messages carry no
// traceparent.
func TestTracingOffAddsNoHeader(t *testing.T) {
	t.Cleanup(tracing.Use(nil, false))
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "adt", From: []string{"adt"}, To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	done := make(chan nats.Header, 1)
	p := startPipelineWithHooks(t, cfg, Hooks{OnDone: func(_, _ string, h nats.Header) { done <- h }})
	require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("NOTRACE-1", "M1", "A01")))
	select {
	case h := <-done:
		require.Empty(t, h.Get(tracing.HeaderTraceParent), "the delivered copy carries no traceparent")
		require.NotEmpty(t, h.Get(wire.HeaderControlID), "(the copy's own headers are there)")
	case <-time.After(10 * time.Second):
		t.Fatal("waiting for the delivery: none within 10 s")
	}
}

// With tracing.enabled, spans reach an OTLP/HTTP collector's /v1/traces
// with the configured headers, and the broker's logs do not show them.
func TestTracesExportedOverOTLPHTTP(t *testing.T) {
	t.Cleanup(tracing.Use(nil, false))
	type export struct {
		path, key string
		body      []byte
	}
	got := make(chan export, 16)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- export{r.URL.Path, r.Header.Get("X-Api-Key"), body}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()

	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "adt", From: []string{"adt"}, To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	cfg.Tracing = config.TracingConfig{Enabled: true, Endpoint: collector.URL, SampleRatio: 1, ServiceName: "hl7broker", Headers: map[string]string{"X-Api-Key": "s3cret-api-key"}}
	p := startPipeline(t, cfg)
	require.True(t, tracing.On())
	require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("OTLP-1", "M1", "A01")))
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for the delivery")
	require.NoError(t, p.Shutdown(context.Background())) // flushes the batch
	require.False(t, tracing.On(), "stopping the broker turns its tracing off")

	var all []byte
	for len(got) > 0 {
		e := <-got
		assert.Equal(t, "/v1/traces", e.path)
		assert.Equal(t, "s3cret-api-key", e.key, "the configured header")
		all = append(all, e.body...)
	}
	for _, name := range []string{tracing.SpanReceive, tracing.SpanStore, tracing.SpanRoute, tracing.SpanDeliver} {
		assert.Contains(t, string(all), name, "exported")
	}
	assert.NotContains(t, p.logs.String(), "s3cret-api-key")
	assert.Contains(t, p.logs.String(), "tracing on")
}
