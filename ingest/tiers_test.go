package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keyN(i int) tierKey {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	sum := sha256.Sum256(b[:])
	return tierKeyOf([16]byte(sum[:16]))
}

// Entries frozen into sorted arrays, entries still open, and entries
// added late to a frozen bucket are all found with their numbers; keys
// never added are not.
func TestTiersFindWhatWasAddedFrozenOrOpen(t *testing.T) {
	span := int64(time.Second)
	tr := newTiers(int64(time.Hour), span)
	t0 := time.Now().UnixNano()
	want := map[tierKey]uint64{}
	for i := range 20000 {
		at := t0 + int64(i/1000)*span // 20 buckets of 1,000
		k, v := keyN(i), uint64(1<<40+i*7)
		tr.add(k, v, at, at)
		want[k] = v
	}
	late := keyN(-1)
	tr.add(late, 5, t0+3*span, t0+20*span) // read back into a frozen bucket
	want[late] = 5
	require.Equal(t, len(want), tr.len())
	frozen := 0
	for _, b := range tr.buckets {
		frozen += len(b.frozen)
	}
	assert.Greater(t, frozen, 18000, "the buckets before the newest are frozen")
	for k, v := range want {
		got, ok := tr.find(k, t0)
		require.True(t, ok)
		require.Equal(t, v, got)
	}
	for i := 20000; i < 30000; i++ {
		_, ok := tr.find(keyN(i), t0)
		require.False(t, ok, "never added: %d", i)
	}
	// Freezing the late entry keeps both it and its bucket's others.
	tr.add(keyN(99999), 1, t0+21*span, t0+21*span)
	got, ok := tr.find(late, t0)
	assert.True(t, ok)
	assert.Equal(t, uint64(5), got)
	got, ok = tr.find(keyN(3500), t0)
	assert.True(t, ok)
	assert.Equal(t, uint64(1<<40+3500*7), got)
}

// The later entry for a key wins, open or frozen; numbers too far apart
// to share a base stay in the map and are still found.
func TestTiersLaterEntryWinsAndWideNumbersStayOpen(t *testing.T) {
	span := int64(time.Second)
	tr := newTiers(int64(time.Hour), span)
	t0 := time.Now().UnixNano()
	k := keyN(1)
	tr.add(k, 10, t0, t0)
	tr.add(k, 11, t0, t0)
	tr.add(keyN(2), math.MaxUint64, t0, t0)
	tr.add(keyN(3), 0, t0+span, t0+span) // freezes the first bucket: 0 and 2^64-1 cannot share a base
	v, ok := tr.find(k, t0)
	assert.True(t, ok)
	assert.Equal(t, uint64(11), v)
	v, ok = tr.find(keyN(2), t0)
	assert.True(t, ok)
	assert.Equal(t, uint64(math.MaxUint64), v)
	tr.add(k, 12, t0+span, t0+span) // the newer bucket's entry is found first
	v, _ = tr.find(k, t0)
	assert.Equal(t, uint64(12), v)
}

// BenchmarkRecent is a Lookup that misses and an Add, with two minutes of
// 7,000 messages a second already held: what each stored message costs
// ingest. The heap those two minutes take is reported as B/entry.
//
//	go test ./ingest -run '^$' -bench Recent
func BenchmarkRecent(b *testing.B) {
	const rate, held = 7000, 7000 * 120
	key := func(i int) recentKey { return KeyOf(string(binary.BigEndian.AppendUint64(nil, uint64(i)))) }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewRecent(2 * time.Minute)
	now := time.Now()
	for i := range held {
		r.Add(key(i), uint64(i), now.Add(time.Duration(i-held)*time.Second/rate))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	i := held
	for b.Loop() {
		k := key(i)
		if _, ok := r.Lookup(k, now); ok {
			b.Fatal("found a key never added")
		}
		r.Add(k, uint64(i), now)
		i++
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/held, "B/entry")
}
