package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
)

// A resend 110 s after its original is recognised; one 130 s after is a
// new message (the default window of 2 minutes; an entry lives between
// the window and the window plus a twenty-fourth of it).
func TestRecentRemembersTheWindowAndNoLonger(t *testing.T) {
	r := NewRecent(2 * time.Minute)
	t0 := time.Now()
	k, other := KeyOf("adt|a|b"), KeyOf("adt|a|c")
	r.Add(k, 41, t0)
	seq, ok := r.Lookup(k, t0.Add(110*time.Second))
	assert.True(t, ok)
	assert.Equal(t, uint64(41), seq)
	_, ok = r.Lookup(k, t0.Add(130*time.Second))
	assert.False(t, ok, "past the window")
	_, ok = r.Lookup(other, t0.Add(time.Second))
	assert.False(t, ok, "another message")
	assert.Equal(t, 1, r.Len())
}

func TestRecentDropsWhatTheWindowHasPassed(t *testing.T) {
	r := NewRecent(10 * time.Second)
	old := time.Now().Add(-time.Minute)
	for i := range 100 {
		r.Add(KeyOf(string(rune('a'+i%26))+string(rune(i))), uint64(i), old)
	}
	r.Add(KeyOf("now"), 1000, time.Now()) // adding expires the old buckets
	assert.Equal(t, 1, r.Len())
	r.Add(KeyOf("earlier"), 999, time.Now().Add(-5*time.Second)) // read back: older than the newest bucket
	seq, ok := r.Lookup(KeyOf("earlier"), time.Now())
	assert.True(t, ok)
	assert.Equal(t, uint64(999), seq)
}

func TestRecentUnsureIsTakenOnce(t *testing.T) {
	r := NewRecent(time.Minute)
	assert.True(t, r.TakeUnsure().IsZero())
	t1 := time.Now()
	r.Unsure(t1)
	r.Unsure(t1.Add(time.Second)) // the earliest counts
	assert.Equal(t, t1, r.TakeUnsure())
	assert.True(t, r.TakeUnsure().IsZero())
}

// Forget empties the windows of a broker that has fallen idle.
func TestForgetDropsAnIdleWindow(t *testing.T) {
	reuse, recent := NewReuseTracker(time.Second), NewRecent(time.Second)
	now := time.Now()
	reuse.observe([16]byte{1}, [16]byte{2}, now)
	recent.Add(KeyOf("a"), 1, now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Forget(ctx, reuse, recent); close(done) }()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n, m := recent.Len(), func() int { reuse.mu.Lock(); defer reuse.mu.Unlock(); return reuse.tiers.len() }(); n+m > 0 {
			return fmt.Errorf("recent holds %d, the reuse tracker %d", n, m)
		}
		return nil
	})
	cancel()
	<-done
}
