package history

// What the writer holds back: records and events that arrived before
// the messages they belong to, and the positions it may write as done.

import (
	"maps"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// forget drops what the writer holds in memory: the Indexer starts
// again from the positions written.
func (ix *Index) forget() {
	ix.held, ix.seen, ix.above, ix.gapSince, ix.lastHead, ix.covered = nil, nil, nil, time.Time{}, 0, 0
}

// headSeen notes that message id's head reached the index (written or
// held), and moves covered on over every message whose head came.
func (ix *Index) headSeen(id uint64, now time.Time) {
	ix.lastHead = max(ix.lastHead, id)
	if id <= ix.covered {
		return
	}
	if ix.above == nil {
		ix.above = map[uint64]bool{}
	}
	ix.above[id] = true
	ix.advance(now)
}

// cover notes that HL7_IN was read from from to to: every message there
// has its head in the index (or has none to have).
func (ix *Index) cover(from, to uint64, now time.Time) {
	if from <= ix.covered+1 {
		ix.covered = max(ix.covered, to)
	}
	ix.advance(now)
}

func (ix *Index) advance(now time.Time) {
	moved := false
	for ix.above[ix.covered+1] {
		delete(ix.above, ix.covered+1)
		ix.covered++
		moved = true
	}
	for id := range ix.above { // left behind by a cover
		if id <= ix.covered {
			delete(ix.above, id)
		}
	}
	switch {
	case len(ix.above) == 0:
		ix.gapSince = time.Time{}
	case moved || ix.gapSince.IsZero():
		ix.gapSince = now
	}
}

// gap returns the first run of messages whose heads have not come
// although later ones have, for longer than wait: their received events
// were lost (a crash between storing and recording, a full event queue),
// and their records must be read.
func (ix *Index) gap(now time.Time, wait time.Duration) (from, to uint64, ok bool) {
	if len(ix.above) == 0 || ix.gapSince.IsZero() || now.Sub(ix.gapSince) < wait {
		return 0, 0, false
	}
	next := uint64(0)
	for id := range ix.above {
		if next == 0 || id < next {
			next = id
		}
	}
	return ix.covered + 1, next - 1, true
}

// heldCount is how many messages wait in memory.
func (ix *Index) heldCount() int {
	if ix.held == nil {
		return 0
	}
	return len(ix.held.order)
}

// hold moves out of b the messages that should wait for the rest of
// their journey, and returns them (nil when none): a new message younger
// than holdFor not yet routed, or with a copy not yet delivered or
// dead-lettered; events of a message whose head (its received event or
// record) is still to come (lastHead is the last message with a head
// seen), for up to a minute.
func (b *batch) hold(known map[uint64]bool, lastHead uint64, now time.Time) *batch {
	var held *batch
	kept := b.order[:0]
	for _, id := range b.order {
		c := b.byID[id]
		wait := false
		if held == nil || len(held.order) < maxHeld {
			switch {
			case c.head != nil && !known[id]:
				wait = now.Sub(c.head.at) < holdFor && c.unfinished()
			case c.head == nil && id > lastHead:
				if c.since.IsZero() {
					c.since = now
				}
				wait = now.Sub(c.since) < time.Minute
			}
		}
		if !wait {
			kept = append(kept, id)
			continue
		}
		if held == nil {
			held = &batch{byID: map[uint64]*change{}}
		}
		held.byID[id] = c
		held.order = append(held.order, id)
		delete(b.byID, id)
	}
	b.order = kept
	return held
}

// unfinished: the message is not routed yet, or a copy is still on its
// way.
func (c *change) unfinished() bool {
	if !c.routed {
		return true
	}
	return slices.ContainsFunc(c.copies, func(d *copyChange) bool {
		return !d.set || d.status == StatusQueued || d.status == StatusRetrying
	})
}

// positions are seen (HL7_IN: covered), stopped before every record a
// held message still needs.
func (held *batch) positions(seen Positions, covered uint64) Positions {
	pos := maps.Clone(seen)
	pos[wire.StreamIn] = covered
	if held == nil {
		return pos
	}
	for _, c := range held.byID {
		if c.head != nil && c.head.inSeq > 0 {
			pos[wire.StreamIn] = min(pos[wire.StreamIn], c.head.inSeq-1)
		}
		if c.firstEvents > 0 {
			pos[wire.StreamEvents] = min(pos[wire.StreamEvents], c.firstEvents-1)
		}
	}
	return pos
}
