package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Baseline is JetStream on its own, as a sending system publishing to it
// directly would use it: the raw-publish ceiling bench --compare measures
// the broker against. It publishes to a stream of its own, removed by
// Close, at the durability the config gives: with an embedded server (in
// c.DataDir) that syncs every write under durability fsync, reached over
// TCP loopback; with an external cluster, on it, with the config's
// replicas.
type Baseline struct {
	n       *NATS
	nc      *nats.Conn // the TCP client of an embedded server
	js      jetstream.JetStream
	stream  string
	subject string
}

// OpenBaseline opens the store c names and creates the baseline's stream.
func OpenBaseline(ctx context.Context, c *config.Config) (*Baseline, error) {
	n, err := OpenWith(ctx, c, EmbedOptions{PerWriteSync: true, ListenTCP: true})
	if err != nil {
		return nil, err
	}
	b := &Baseline{n: n, js: n.JetStream}
	if n.server != nil {
		if b.nc, err = nats.Connect(n.TCPURL(), nats.Name("hl7broker-bench")); err != nil {
			b.Close()
			return nil, fmt.Errorf("nats: %w", err)
		}
		if b.js, err = jetstream.New(b.nc); err != nil {
			b.Close()
			return nil, fmt.Errorf("nats: %w", err)
		}
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	b.stream, b.subject = "HL7_BENCH_"+id, "hl7bench."+id
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: b.stream, Subjects: []string{b.subject},
		Storage: jetstream.FileStorage, Replicas: max(1, c.NATS.Replicas), Duplicates: c.NATS.DuplicateWindow}); err != nil {
		b.Close()
		return nil, fmt.Errorf("nats: bench stream: %w", err)
	}
	return b, nil
}

// Publish stores data with Msg-Id id (as ingest does) and waits for the
// PubAck.
func (b *Baseline) Publish(ctx context.Context, id string, data []byte) error {
	_, err := b.js.Publish(ctx, b.subject, data, jetstream.WithMsgID(id))
	return err
}

// Close removes the baseline's stream and closes the connections.
func (b *Baseline) Close() {
	if b.stream != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = b.js.DeleteStream(ctx, b.stream)
		cancel()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	b.n.Close()
}
