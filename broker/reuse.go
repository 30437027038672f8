package broker

import (
	"sync"
	"time"
)

// reuseTracker notices a sender reusing a control ID for a different
// message inside the duplicate window. Such a message is stored and
// delivered like any other (its Msg-Id includes a digest of its bytes);
// the tracker only makes the reuse visible, in a metric and a warning,
// because it often means a sender reset its counter. It holds hashes,
// never content, and forgets what is older than the window.
type reuseTracker struct {
	window time.Duration
	limit  int // entries kept at most; past it, expired ones are swept, then all

	mu   sync.Mutex
	seen map[[16]byte]reuseEntry
}

type reuseEntry struct {
	digest [16]byte
	at     time.Time
}

// reuseLimit bounds the tracker's memory (about 64 bytes an entry): far
// more distinct control IDs than a broker receives in one window.
const reuseLimit = 1 << 20

func newReuseTracker(window time.Duration) *reuseTracker {
	return &reuseTracker{window: window, limit: reuseLimit, seen: map[[16]byte]reuseEntry{}}
}

// observe records that the message identified by key (listener, MSH-3,
// MSH-4, MSH-10) with content digest was stored, and reports whether a
// different message with the same key was stored within the window.
func (t *reuseTracker) observe(key, digest [16]byte, now time.Time) (reused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.seen[key]; ok && now.Sub(e.at) < t.window {
		reused = e.digest != digest
	}
	if len(t.seen) >= t.limit {
		t.sweep(now)
	}
	t.seen[key] = reuseEntry{digest: digest, at: now}
	return reused
}

// sweep drops entries older than the window, or all of them if that is
// not enough: the tracker then misses a reuse, but no message is affected.
func (t *reuseTracker) sweep(now time.Time) {
	for k, e := range t.seen {
		if now.Sub(e.at) >= t.window {
			delete(t.seen, k)
		}
	}
	if len(t.seen) >= t.limit {
		clear(t.seen)
	}
}
