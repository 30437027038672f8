package ingest

import (
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
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
