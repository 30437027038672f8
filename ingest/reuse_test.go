package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReuseTracker(t *testing.T) {
	tr := NewReuseTracker(time.Minute)
	tr.limit = 3
	now := time.Unix(1000, 0)
	key, a, b := [16]byte{1}, [16]byte{2}, [16]byte{3}
	assert.False(t, tr.observe(key, a, now), "first seen")
	assert.False(t, tr.observe(key, a, now.Add(time.Second)), "the same bytes again: a resend, not a reuse")
	assert.True(t, tr.observe(key, b, now.Add(2*time.Second)), "other bytes, same key, inside the window")
	assert.False(t, tr.observe(key, a, now.Add(2*time.Minute)), "outside the window: forgotten")
	for i := range 5 { // past the limit: expired entries are swept, then all; never more than the limit
		tr.observe([16]byte{9, byte(i)}, a, now.Add(10*time.Minute))
		assert.LessOrEqual(t, len(tr.seen), tr.limit)
	}
}
