package ingest

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// ReuseTracker notices a sender reusing a control ID for a different
// message inside the duplicate window. Such a message is stored and
// delivered like any other (its Msg-Id includes a digest of its bytes);
// the tracker only makes the reuse visible, in a metric and a warning,
// because it often means a sender reset its counter. It holds hashes,
// never content: 96 bits of the key and 32 of the content digest (a
// collision only misses one warning), about 19 bytes a message stored
// within the window (tiers), and forgets what is older. It keeps at most
// reuseLimit messages: past that, the oldest seconds go early.
type ReuseTracker struct {
	window time.Duration

	mu    sync.Mutex
	tiers tiers
}

// reuseLimit bounds the tracker's memory to about 5 MB: the whole default
// 2-minute window up to 2,000 distinct messages a second, a shorter one
// above. A reuse is then missed, and no message is affected.
const reuseLimit = 1 << 18

func NewReuseTracker(window time.Duration) *ReuseTracker {
	t := &ReuseTracker{window: window, tiers: newTiers(int64(window), int64(max(window/recentBuckets, time.Second)))}
	t.tiers.limit = reuseLimit
	return t
}

// observe records that the message identified by key (listener, MSH-3,
// MSH-4, MSH-10) with content digest was stored, and reports whether the
// latest message stored with the same key within the window had other
// bytes.
func (t *ReuseTracker) observe(key, digest [16]byte, now time.Time) (reused bool) {
	k, d, at := tierKeyOf(key), uint64(binary.BigEndian.Uint32(digest[:])), now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.tiers.find(k, at-int64(t.window)); ok {
		reused = prev != d
	}
	t.tiers.add(k, d, at, at)
	return reused
}

// forget drops what the window has passed at now.
func (t *ReuseTracker) forget(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tiers.expire(now.UnixNano())
}

// Forget runs until ctx ends, dropping every few seconds what the window
// has passed from the tracker and from recent (nil where the store is
// shared): entries otherwise only go as new ones come, and a broker that
// falls idle after a burst would hold the burst's last window for good.
func Forget(ctx context.Context, reuse *ReuseTracker, recent *Recent) {
	tick := time.NewTicker(max(reuse.window/recentBuckets, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			reuse.forget(now)
			if recent != nil {
				recent.forget(now)
			}
		}
	}
}
