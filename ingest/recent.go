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
// minutes, 150 MB. Recent keeps 16 bytes of a digest of each Msg-Id and
// its sequence, in maps of a few seconds each that are dropped whole as
// they age: about 40 bytes a message. JetStream's window on HL7_IN is then
// only three store timeouts long (store.NATS.InWindow), and it still
// catches a resend that arrives while its original is being stored.
//
// Recent is filled as messages are stored, and at start (Load) from
// HL7_IN's records of the window, so it survives a crash. A message whose
// store failed may have been stored all the same: Unsure has the records
// since then read back once the store works again.
type Recent struct {
	window time.Duration
	span   time.Duration // one bucket: window / recentBuckets

	mu      sync.Mutex
	buckets []recentBucket // oldest first
	unsure  time.Time      // a store failed since: read back from then (zero: none)
}

type recentBucket struct {
	start int64 // unix nanoseconds, a multiple of span
	ids   map[recentKey]uint64
}

// recentKey is the first 16 bytes of a Msg-Id's SHA-256: two different
// messages share one with a chance of 2^-128 per pair.
type recentKey [16]byte

// recentBuckets: an entry is kept between the window and the window plus
// window/recentBuckets (5 s for 2 minutes).
const recentBuckets = 24

// NewRecent makes an empty Recent for window.
func NewRecent(window time.Duration) *Recent {
	return &Recent{window: window, span: max(window/recentBuckets, time.Second)}
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
	oldest := now.UnixNano() - int64(r.window)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.buckets) - 1; i >= 0; i-- {
		b := &r.buckets[i]
		if b.start+int64(r.span) <= oldest { // every entry older than the window
			break
		}
		if seq, ok := b.ids[k]; ok {
			return seq, true
		}
	}
	return 0, false
}

// Add records that the message with key was stored at seq, at time at.
func (r *Recent) Add(k recentKey, seq uint64, at time.Time) {
	t := at.UnixNano()
	start := t - t%int64(r.span)
	r.mu.Lock()
	defer r.mu.Unlock()
	// The newest bucket is nearly always the one; a record read back
	// from the store (Load) may be older.
	i := len(r.buckets) - 1
	for i >= 0 && r.buckets[i].start > start {
		i--
	}
	if i < 0 || r.buckets[i].start != start {
		r.buckets = append(r.buckets, recentBucket{})
		copy(r.buckets[i+2:], r.buckets[i+1:])
		r.buckets[i+1] = recentBucket{start: start, ids: map[recentKey]uint64{}}
		i++
	}
	r.buckets[i].ids[k] = seq
	r.expire(time.Now().UnixNano())
}

// expire drops the buckets the window has passed.
func (r *Recent) expire(now int64) {
	n := 0
	for n < len(r.buckets) && r.buckets[n].start+int64(r.span) <= now-int64(r.window) {
		n++
	}
	if n > 0 {
		r.buckets = append(r.buckets[:0], r.buckets[n:]...)
	}
}

// Len is how many messages Recent holds.
func (r *Recent) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.buckets {
		n += len(b.ids)
	}
	return n
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
