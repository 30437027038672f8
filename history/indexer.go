package history

import (
	"context"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// IndexedStreams are the streams the index is derived from.
var IndexedStreams = []string{wire.StreamIn, wire.StreamEvents, wire.StreamDLQ, wire.StreamAudit}

// Indexer keeps an Index up to date: it reads each indexed stream with
// an ordered consumer from where the index stands, applies what arrives
// in batches, and prunes what the streams no longer keep. Every broker of
// a cluster runs its own, with its own index.
type Indexer struct {
	JetStream jetstream.JetStream
	Index     *Index
	Log       zerolog.Logger
}

// indexBatch is how many records one transaction applies at most.
const indexBatch = 4096

// indexLinger is how long the first record of a batch waits for more: a
// search sees a message at most about this much later.
const indexLinger = 100 * time.Millisecond

// Run indexes until ctx ends; an error ends it (to be restarted).
func (ix *Indexer) Run(ctx context.Context) error {
	pos, err := ix.Index.Positions(ctx)
	if err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	if err := ix.checkStreams(ctx, pos); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inbox := make(chan Item, indexBatch)
	for _, name := range IndexedStreams {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if p := pos[name]; p > 0 {
			cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: p + 1}
		}
		cons, err := ix.JetStream.OrderedConsumer(ctx, name, cfg)
		if err != nil {
			return fmt.Errorf("history index: %s: %w", name, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			meta, err := m.Metadata()
			if err != nil {
				return
			}
			select {
			case inbox <- Item{Stream: name, Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp}:
			case <-ctx.Done():
			}
		})
		if err != nil {
			return fmt.Errorf("history index: %s: %w", name, err)
		}
		defer cc.Stop()
	}
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	batch := make([]Item, 0, indexBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			if err := ix.prune(ctx); err != nil && ctx.Err() == nil {
				ix.Log.Warn().Str("reason", err.Error()).Msg("history index: pruning failed; will retry")
			}
		case it := <-inbox:
			// Gather what arrives within indexLinger: under load, one
			// transaction for thousands of records instead of many small.
			batch = append(batch[:0], it)
			linger := time.NewTimer(indexLinger)
		more:
			for len(batch) < indexBatch {
				select {
				case it := <-inbox:
					batch = append(batch, it)
				case <-linger.C:
					break more
				}
			}
			linger.Stop()
			if err := ix.Index.Apply(ctx, batch); err != nil {
				return err
			}
		}
	}
}

// checkStreams empties the index when it is ahead of a stream: the
// streams were replaced (a new data_dir/jetstream, a restored backup),
// and what the index says would belong to other messages.
func (ix *Indexer) checkStreams(ctx context.Context, pos Positions) error {
	for _, name := range IndexedStreams {
		s, err := ix.JetStream.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("history index: %s: %w", name, err)
		}
		if last := s.CachedInfo().State.LastSeq; pos[name] > last {
			ix.Log.Warn().Str("stream", name).Uint64("indexed_to", pos[name]).Uint64("stream_last", last).
				Msg("history index: the index is ahead of the stream (the streams were replaced): rebuilding it")
			return ix.Index.Reset(ctx)
		}
	}
	return nil
}

// prune removes what retention removed from the streams.
func (ix *Indexer) prune(ctx context.Context) error {
	first := map[string]uint64{}
	for _, name := range []string{wire.StreamIn, wire.StreamDLQ, wire.StreamAudit} {
		s, err := ix.JetStream.Stream(ctx, name)
		if err != nil {
			return err
		}
		st := s.CachedInfo().State
		first[name] = st.FirstSeq
		if st.Msgs == 0 {
			first[name] = st.LastSeq + 1
		}
	}
	return ix.Index.Prune(ctx, first[wire.StreamIn], first[wire.StreamDLQ], first[wire.StreamAudit])
}
