package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// IndexedStreams are the streams the index is derived from.
var IndexedStreams = []string{wire.StreamIn, wire.StreamEvents, wire.StreamDLQ, wire.StreamAudit}

// consumedStreams are read as they grow; HL7_IN is read in ranges.

// Indexer keeps an Index up to date: it reads HL7_EVENTS, HL7_DLQ and
// HL7_AUDIT with ordered consumers from where the index stands, applies
// what arrives in batches, and prunes what the streams no longer keep.
// Every broker of a cluster runs its own, with its own index.
//
// Live, a message's summary and search keys come from its received
// event, so the index does not read each message back. HL7_IN itself is
// read only where the events cannot tell: on start, what was stored
// since the index last stood (all of it on a rebuild), and any message
// whose received event did not come within GapWait (lost in a crash
// between storing and recording, or to a full event queue).
type Indexer struct {
	JetStream jetstream.JetStream
	Index     *Index
	Log       zerolog.Logger
	// GapWait is how long a message's received event may be missing
	// while later ones came before its record is read (0: 5 s).
	GapWait time.Duration
}

var consumedStreams = []string{wire.StreamEvents, wire.StreamDLQ, wire.StreamAudit}

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
	ix.Index.forget()
	lastIn, err := ix.checkStreams(ctx, pos)
	if err != nil {
		return err
	}
	if pos, err = ix.Index.Positions(ctx); err != nil { // a reset starts over
		return fmt.Errorf("history index: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inbox := make(chan Item, indexBatch)
	consumed := consumedStreams
	if ix.Index.content { // every message's words, from HL7_IN, under a position of their own
		consumed = append(slices.Clip(consumed), StreamTexts)
	}
	for _, name := range consumed {
		stream := name
		if name == StreamTexts {
			stream = wire.StreamIn
		}
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if p := pos[name]; p > 0 {
			cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: p + 1}
		}
		cons, err := ix.JetStream.OrderedConsumer(ctx, stream, cfg)
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
	gaps := time.NewTicker(time.Second)
	defer gaps.Stop()
	gapWait := cmp.Or(ix.GapWait, 5*time.Second)
	// HL7_IN from where the index stands to where it stood at start.
	var reading *inReader
	if covered := pos[wire.StreamIn]; lastIn > covered {
		if reading, err = ix.readIn(ctx, covered+1, lastIn); err != nil {
			return err
		}
	}
	batch := make([]Item, 0, indexBatch)
	// again wakes the loop to write messages held back when no more
	// records come.
	var again <-chan time.Time
	apply := func(items []Item) error {
		if err := ix.Index.apply(ctx, items, time.Now()); err != nil {
			return err
		}
		if again == nil && ix.Index.heldCount() > 0 {
			again = time.After(holdFor / 4)
		}
		return nil
	}
	for {
		if reading != nil {
			items, done, err := reading.next(ctx)
			if err != nil {
				return err
			}
			for len(items) < indexBatch { // what the consumers brought meanwhile
				select {
				case it := <-inbox:
					items = append(items, it)
					continue
				default:
				}
				break
			}
			if err := apply(items); err != nil {
				return err
			}
			if done {
				ix.Index.cover(reading.from, reading.to, time.Now())
				reading = nil
				if err := apply(nil); err != nil { // write where it stands
					return err
				}
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-gaps.C:
			if from, to, ok := ix.Index.gap(time.Now(), gapWait); ok {
				ix.Log.Warn().Uint64("from", from).Uint64("to", to).
					Msg("history index: messages without a received event (lost in a crash or to a full queue): reading them from HL7_IN")
				if reading, err = ix.readIn(ctx, from, to); err != nil {
					return err
				}
			}
		case <-again:
			again = nil
			if err := apply(nil); err != nil {
				return err
			}
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
			if err := apply(batch); err != nil {
				return err
			}
		}
	}
}

// checkStreams empties the index when it is ahead of a stream: the
// streams were replaced (a new data_dir/jetstream, a restored backup),
// and what the index says would belong to other messages. It returns
// HL7_IN's last sequence.
func (ix *Indexer) checkStreams(ctx context.Context, pos Positions) (lastIn uint64, err error) {
	reset := false
	for _, name := range IndexedStreams {
		s, err := ix.JetStream.Stream(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("history index: %s: %w", name, err)
		}
		last := s.CachedInfo().State.LastSeq
		if name == wire.StreamIn {
			lastIn = last
		}
		if pos[name] > last && !reset {
			ix.Log.Warn().Str("stream", name).Uint64("indexed_to", pos[name]).Uint64("stream_last", last).
				Msg("history index: the index is ahead of the stream (the streams were replaced): rebuilding it")
			if err := ix.Index.Reset(ctx); err != nil {
				return 0, err
			}
			reset = true
		}
	}
	return lastIn, nil
}

// inReader reads HL7_IN from from to to.
type inReader struct {
	cons     jetstream.Consumer
	from, to uint64
}

func (ix *Indexer) readIn(ctx context.Context, from, to uint64) (*inReader, error) {
	cons, err := ix.JetStream.OrderedConsumer(ctx, wire.StreamIn, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, fmt.Errorf("history index: %s: %w", wire.StreamIn, err)
	}
	return &inReader{cons: cons, from: from, to: to}, nil
}

// next returns the next records; done once to is reached or nothing more
// comes (retention removed the rest).
func (r *inReader) next(ctx context.Context) (items []Item, done bool, err error) {
	msgs, err := r.cons.Fetch(indexBatch, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return nil, false, fmt.Errorf("history index: reading %s: %w", wire.StreamIn, err)
	}
	for m := range msgs.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		if meta.Sequence.Stream > r.to {
			done = true
			continue
		}
		items = append(items, Item{Stream: wire.StreamIn, Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp})
		if meta.Sequence.Stream == r.to {
			done = true
		}
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, false, fmt.Errorf("history index: reading %s: %w", wire.StreamIn, err)
	}
	return items, done || len(items) == 0 || ctx.Err() != nil, nil
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
