package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReuseTracker(t *testing.T) {
	tr := NewReuseTracker(time.Minute)
	now := time.Unix(1000, 0)
	key, a, b := [16]byte{1}, [16]byte{2}, [16]byte{3}
	assert.False(t, tr.observe(key, a, now), "first seen")
	assert.False(t, tr.observe(key, a, now.Add(time.Second)), "the same bytes again: a resend, not a reuse")
	assert.True(t, tr.observe(key, b, now.Add(2*time.Second)), "other bytes, same key, inside the window")
	assert.False(t, tr.observe(key, a, now.Add(2*time.Minute)), "outside the window: forgotten")
	tr.observe([16]byte{9}, a, now.Add(10*time.Minute))
	assert.Equal(t, 1, tr.tiers.len(), "what the window passed is dropped")
}

// Past its limit the tracker drops its oldest seconds, never the newest.
func TestReuseTrackerKeepsItsLimit(t *testing.T) {
	tr := NewReuseTracker(time.Minute)
	tr.tiers.limit = 100
	now := time.Unix(1000, 0)
	for i := range 1000 {
		tr.observe([16]byte{byte(i), byte(i >> 8)}, [16]byte{1}, now.Add(time.Duration(i)*10*time.Millisecond))
	}
	assert.LessOrEqual(t, tr.tiers.len(), 100+250, "the limit, and at most one bucket more (2.5 s at 100 a second)")
	last := now.Add(9990 * time.Millisecond)
	assert.True(t, tr.observe([16]byte{byte(999 % 256), byte(999 >> 8)}, [16]byte{2}, last), "the newest entries are kept")
}
