package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/wire"
)

// Recent remembers the messages stored in HL7_IN within the duplicate
// window, so that a sender's resend is stored once and acknowledged again
// (docs/reliability.md). JetStream's own window does the same, at some 180
// bytes of server memory a message: at 7,000 messages a second over two
// minutes, 150 MB. Recent keeps 96 bits of a digest of each Msg-Id and
// its sequence, in buckets of a few seconds that are dropped whole as
// they age (tiers): about 19 bytes a message (the maps it replaced took
// 50). JetStream's window on
// HL7_IN is then only three store timeouts long (store.NATS.InWindow),
// and it still catches a resend that arrives while its original is being
// stored.
//
// Recent is filled as messages are stored, and at start (Load) from
// HL7_IN's records of the window, so it survives a crash. A message whose
// store failed may have been stored all the same: Unsure has the records
// since then read back once the store works again.
type Recent struct {
	window time.Duration

	mu     sync.Mutex
	tiers  tiers
	unsure time.Time // a store failed since: read back from then (zero: none)
}

// recentKey is the first 16 bytes of a Msg-Id's SHA-256, of which Recent
// keeps 12: two different messages share those with a chance of 2^-96
// per pair, about 10^-17 for a million messages a window each looked up
// a million times.
type recentKey [16]byte

// recentBuckets: an entry is kept between the window and the window plus
// window/recentBuckets (5 s for 2 minutes).
const recentBuckets = 24

// NewRecent makes an empty Recent for window.
func NewRecent(window time.Duration) *Recent {
	return &Recent{window: window, tiers: newTiers(int64(window), int64(max(window/recentBuckets, time.Second)))}
}

// KeyOf is the key Recent keeps for a Msg-Id.
func KeyOf(msgID string) recentKey {
	sum := sha256.Sum256([]byte(msgID))
	var k recentKey
	copy(k[:], sum[:16])
	return k
}

// Lookup returns the sequence a message with key was stored at, if it was
// stored within the window before now.
func (r *Recent) Lookup(k recentKey, now time.Time) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tiers.find(tierKeyOf(k), now.UnixNano()-int64(r.window))
}

// Add records that the message with key was stored at seq, at time at.
func (r *Recent) Add(k recentKey, seq uint64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tiers.add(tierKeyOf(k), seq, at.UnixNano(), time.Now().UnixNano())
}

// forget drops what the window has passed at now.
func (r *Recent) forget(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tiers.expire(now.UnixNano())
}

// Len is how many messages Recent holds.
func (r *Recent) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tiers.len()
}

// Unsure records that a store failed at at: the message may be stored all
// the same, so the records stored since are read back (ReadBack) before
// Recent is trusted for them.
func (r *Recent) Unsure(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unsure.IsZero() || at.Before(r.unsure) {
		r.unsure = at
	}
}

// TakeUnsure returns (and clears) the time from which records must be
// read back; zero when none.
func (r *Recent) TakeUnsure() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.unsure
	r.unsure = time.Time{}
	return at
}

// Load fills r with HL7_IN's records stored since from (their Msg-Id
// headers; the bodies are not read), up to the last record stored when
// it began. It returns how many it read.
func (r *Recent) Load(ctx context.Context, js jetstream.JetStream, from time.Time) (int, error) {
	s, err := js.Stream(ctx, wire.StreamIn)
	if err != nil {
		return 0, fmt.Errorf("recent messages: %w", err)
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 || s.CachedInfo().State.LastTime.Before(from) {
		return 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime: &from, HeadersOnly: true})
	if err != nil {
		return 0, fmt.Errorf("recent messages: %w", err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, fmt.Errorf("recent messages: %w", err)
	}
	defer it.Stop()
	n := 0
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return n, fmt.Errorf("recent messages: stopped after %d: %w", n, err)
			}
			return n, fmt.Errorf("recent messages: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("recent messages: %w", err)
		}
		if id := m.Headers().Get(nats.MsgIdHdr); id != "" {
			r.Add(KeyOf(id), md.Sequence.Stream, md.Timestamp)
			n++
		}
		if md.Sequence.Stream >= last {
			return n, nil
		}
	}
}

// ReadBack runs until ctx ends: after a store failed (Unsure), it reads
// back what was stored since, once the store answers again, so that a
// resend of a message whose PubAck was lost is recognised past
// JetStream's short window.
func (r *Recent) ReadBack(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := r.TakeUnsure()
		if at.IsZero() {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := r.Load(lctx, js, at.Add(-time.Second))
		cancel()
		if err != nil {
			r.Unsure(at) // the store still fails: again later
			continue
		}
		log.Info().Int("messages", n).Msg("recent messages read back after a store failure")
	}
}
