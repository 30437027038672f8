package ingest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkIdentify is what a message's identity (the Msg-Id with its
// content digest, and the reuse check) adds to ingest per message.
func BenchmarkIdentify(b *testing.B) {
	data := testkit.BigMessage(b, "ID1", 1500)
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	tr := NewReuseTracker(2 * time.Minute)
	now := time.Now()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		id := identify("lab", m)
		_ = wire.IngestID("lab", id.key, id.digest)
		tr.observe(id.key, id.digest, now)
	}
}

// BenchmarkAcceptTracing is Accept (parse, check, store in an embedded
// JetStream with durability os, ACK) with tracing off, and on with every
// message sampled and its spans batched to an exporter that drops them:
// what a trace costs a message at ingest.
//
//	go test ./ingest -run '^$' -bench AcceptTracing -count 6
func BenchmarkAcceptTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			c := testkit.Config(b)
			c.NATS.Durability = "os"
			n, err := store.Open(context.Background(), c)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				defer tracing.Use(tp, false)()
			}
			in := New(config.ListenerConfig{Name: "lab", MaxMessageBytes: config.DefaultMaxMessageBytes}, n.Committer(5*time.Second), zerolog.Nop())
			base := string(testkit.BigMessage(b, "CTRL", 1000))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				msg := strings.Replace(base, "|CTRL|", "|C"+strconv.Itoa(i)+"|", 1)
				if ack := in.Accept(context.Background(), []byte(msg), Origin{}); ackCode(ack) != "AA" {
					b.Fatalf("ACK %s", ackCode(ack))
				}
			}
		})
	}
}
