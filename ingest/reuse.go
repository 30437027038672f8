package ingest

import (
	"encoding/binary"
	"sync"
	"time"
)

// ReuseTracker notices a sender reusing a control ID for a different
// message inside the duplicate window. Such a message is stored and
// delivered like any other (its Msg-Id includes a digest of its bytes);
// the tracker only makes the reuse visible, in a metric and a warning,
// because it often means a sender reset its counter. It holds hashes,
// never content, and forgets what is older than the window.
type ReuseTracker struct {
	window time.Duration
	limit  int // entries kept at most; past it, expired ones are swept, then all

	mu   sync.Mutex
	seen map[uint64]reuseEntry // by the first 8 bytes of the key
}

// reuseEntry is 16 bytes: 8 of the content digest (a collision only
// misses one warning) and the time stored.
type reuseEntry struct {
	digest uint64
	at     int64 // unix nanoseconds
}

// reuseLimit bounds the tracker's memory to about 10 MB: 2,000 distinct
// control IDs a second over the default 2-minute window. Past it the
// tracker forgets, and may miss a reuse; messages are not affected.
const reuseLimit = 1 << 18

func NewReuseTracker(window time.Duration) *ReuseTracker {
	return &ReuseTracker{window: window, limit: reuseLimit, seen: map[uint64]reuseEntry{}}
}

// observe records that the message identified by key (listener, MSH-3,
// MSH-4, MSH-10) with content digest was stored, and reports whether a
// different message with the same key was stored within the window.
func (t *ReuseTracker) observe(key, digest [16]byte, now time.Time) (reused bool) {
	k, d, at := binary.BigEndian.Uint64(key[:]), binary.BigEndian.Uint64(digest[:]), now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.seen[k]; ok && at-e.at < int64(t.window) {
		reused = e.digest != d
	}
	if len(t.seen) >= t.limit {
		t.sweep(at)
	}
	t.seen[k] = reuseEntry{digest: d, at: at}
	return reused
}

// sweep drops entries older than the window, or all of them if that is
// not enough: the tracker then misses a reuse, but no message is affected.
func (t *ReuseTracker) sweep(now int64) {
	for k, e := range t.seen {
		if now-e.at >= int64(t.window) {
			delete(t.seen, k)
		}
	}
	if len(t.seen) >= t.limit {
		clear(t.seen)
	}
}
