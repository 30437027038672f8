package ingest

import (
	"context"
	"os"
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

// BenchmarkAcceptValidation is Accept (parse, check, store in an embedded
// JetStream with durability os, ACK) with validation off and record (the
// default): what checking a message against its HL7 version costs it.
//
//	go test ./ingest -run '^$' -bench AcceptValidation -count 6
func BenchmarkAcceptValidation(b *testing.B) {
	for _, mode := range []string{"record", "off", "record", "off"} {
		b.Run(mode, func(b *testing.B) {
			c := testkit.Config(b)
			c.NATS.Durability = "os"
			n, err := store.Open(context.Background(), c)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			in := New(config.ListenerConfig{Name: "lab", MaxMessageBytes: config.DefaultMaxMessageBytes, Validation: mode}, n.Committer(5*time.Second), zerolog.Nop())
			oru, err := os.ReadFile("../hl7/testdata/oru_r01.hl7") // 1.5 KB, valid for 2.5.1
			if err != nil {
				b.Fatal(err)
			}
			base := strings.Replace(string(oru), "|CNTRL-3456|", "|CTRL|", 1)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				msg := strings.Replace(base, "|CTRL|", "|C"+strconv.Itoa(i)+"|", 1)
				if ack := in.Accept(context.Background(), []byte(msg), Origin{}); ackCode(ack) != "CA" { // MSH-15 asks enhanced mode
					b.Fatalf("ACK %s", ackCode(ack))
				}
			}
		})
	}
}
