package ingest

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// tiers holds small entries (a 96-bit key and a number) for a sliding
// time window, in buckets of a few seconds that are dropped whole as the
// window passes them. The newest bucket fills a map; once a newer one
// begins, it is frozen into a sorted array of 16-byte entries with a
// directory by the keys' top bits: about 19 bytes an entry, where maps
// of the same entries took 50 (BenchmarkRecent). Recent and ReuseTracker
// keep their windows in one each; neither locks it for the other.
type tiers struct {
	window, span int64  // nanoseconds
	limit        int    // entries kept at most, past which the oldest buckets go early; 0: no limit
	buckets      []tier // oldest first
}

// tierKey is 96 bits of a hash: the first 12 bytes of a SHA-256.
type tierKey struct {
	hi uint64
	lo uint32
}

func tierKeyOf(b [16]byte) tierKey {
	return tierKey{hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		lo: uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])}
}

type tier struct {
	start  int64              // unix nanoseconds, a multiple of span
	open   map[tierKey]uint64 // the newest bucket's entries, or ones added late to a frozen bucket
	base   uint64             // a frozen entry's number is base + v
	frozen []tierEntry        // sorted by key; one entry a key
	dir    []uint32           // dir[j]: the first frozen entry whose hi>>shift >= j
	shift  uint
}

type tierEntry struct {
	hi    uint64
	lo, v uint32
}

func newTiers(window, span int64) tiers { return tiers{window: window, span: span} }

// add records key k with number v at time at (unix nanoseconds), and drops
// the buckets the window has passed by now.
func (t *tiers) add(k tierKey, v uint64, at, now int64) {
	start := at - at%t.span
	// The newest bucket is nearly always the one; a record read back
	// from the store (Recent.Load) may be older.
	i := len(t.buckets) - 1
	for i >= 0 && t.buckets[i].start > start {
		i--
	}
	if i < 0 || t.buckets[i].start != start {
		t.buckets = slices.Insert(t.buckets, i+1, tier{start: start})
		i++
		if i == len(t.buckets)-1 { // a newer bucket begins: the others are done
			for j := range i {
				t.buckets[j].freeze()
			}
		}
	}
	b := &t.buckets[i]
	if b.open == nil {
		b.open = map[tierKey]uint64{}
	}
	b.open[k] = v
	t.expire(now)
	for t.limit > 0 && len(t.buckets) > 1 && t.len() > t.limit {
		t.buckets = slices.Delete(t.buckets, 0, 1)
	}
}

// find returns the number of the newest entry for k among the buckets
// with entries at or after oldest.
func (t *tiers) find(k tierKey, oldest int64) (uint64, bool) {
	for i := len(t.buckets) - 1; i >= 0; i-- {
		b := &t.buckets[i]
		if b.start+t.span <= oldest { // every entry older than the window
			break
		}
		if v, ok := b.find(k); ok {
			return v, true
		}
	}
	return 0, false
}

// expire drops the buckets the window has passed at now.
func (t *tiers) expire(now int64) {
	n := 0
	for n < len(t.buckets) && t.buckets[n].start+t.span <= now-t.window {
		n++
	}
	if n > 0 {
		t.buckets = slices.Delete(t.buckets, 0, n)
	}
}

// len is how many entries the buckets hold.
func (t *tiers) len() int {
	n := 0
	for _, b := range t.buckets {
		n += len(b.open) + len(b.frozen)
	}
	return n
}

func (b *tier) find(k tierKey) (uint64, bool) {
	if v, ok := b.open[k]; ok {
		return v, true
	}
	if len(b.frozen) == 0 {
		return 0, false
	}
	j := k.hi >> b.shift
	lo, hi := int(b.dir[j]), int(b.dir[j+1])
	i, ok := slices.BinarySearchFunc(b.frozen[lo:hi], k, cmpEntry)
	if !ok {
		return 0, false
	}
	return b.base + uint64(b.frozen[lo+i].v), true
}

func cmpEntry(e tierEntry, k tierKey) int {
	if c := cmp.Compare(e.hi, k.hi); c != 0 {
		return c
	}
	return cmp.Compare(e.lo, k.lo)
}

// freeze moves the open entries into the sorted array. Numbers more than
// 2^32 apart (never within seconds of a stream's sequences) stay open.
func (b *tier) freeze() {
	if len(b.open) == 0 {
		return
	}
	lowest, highest := uint64(math.MaxUint64), uint64(0)
	for _, v := range b.open {
		lowest, highest = min(lowest, v), max(highest, v)
	}
	for _, e := range b.frozen {
		lowest, highest = min(lowest, b.base+uint64(e.v)), max(highest, b.base+uint64(e.v))
	}
	if highest-lowest > math.MaxUint32 {
		return
	}
	entries := make([]tierEntry, 0, len(b.frozen)+len(b.open))
	for _, e := range b.frozen {
		if _, again := b.open[tierKey{e.hi, e.lo}]; !again { // the later entry wins
			entries = append(entries, tierEntry{hi: e.hi, lo: e.lo, v: uint32(b.base + uint64(e.v) - lowest)})
		}
	}
	for k, v := range b.open {
		entries = append(entries, tierEntry{hi: k.hi, lo: k.lo, v: uint32(v - lowest)})
	}
	slices.SortFunc(entries, func(x, y tierEntry) int { return cmpEntry(x, tierKey{y.hi, y.lo}) })
	// A directory of about one slot for four entries: a lookup then
	// searches a handful.
	width := min(bits.Len(uint(len(entries)/4)), 24)
	b.shift = uint(64 - width)
	b.dir = make([]uint32, 1<<width+1)
	i := 0
	for j := range b.dir {
		for i < len(entries) && entries[i].hi>>b.shift < uint64(j) {
			i++
		}
		b.dir[j] = uint32(i)
	}
	b.base, b.frozen, b.open = lowest, entries, nil
}
