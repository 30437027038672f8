package history

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

// Item is one stored record the index learns from.
type Item struct {
	Stream  string // wire.StreamIn, StreamEvents, StreamDLQ or StreamAudit
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time // when the stream stored it
}

// Statuses of a message (messages.status) and of its copy for one
// destination (dests.status).
const (
	StatusReceived     = "received"      // stored, not routed yet
	StatusQueued       = "queued"        // a copy waits for its destination
	StatusRetrying     = "retrying"      // an attempt failed; more will follow
	StatusDelivered    = "delivered"     // every copy was accepted
	StatusDeadLettered = "dead_lettered" // a copy (or the message) is in the DLQ
	StatusUnrouted     = "unrouted"      // no route matched
	StatusPurged       = "purged"        // its dead letter was purged by a person
	StatusFiltered     = "filtered"      // routes matched, but none queued a copy
)

// Statuses lists every status, for validation.
var Statuses = []string{StatusReceived, StatusQueued, StatusRetrying, StatusDelivered, StatusDeadLettered, StatusUnrouted, StatusPurged, StatusFiltered}

// indexLimits admit whatever a listener can (up to 64 MiB).
var indexLimits = func() hl7.Limits {
	l := hl7.DefaultLimits
	l.MaxMessageBytes = 64 << 20
	return l
}()

// Apply adds items to the index in one transaction and records each
// stream's last sequence with them.
//
// It first gathers each message's changes in memory (its HL7_IN record,
// its journey lines, its copies' statuses), then writes each message
// once. Under load a message's record and its whole journey arrive in
// one batch; such a message new to the index costs one INSERT for its
// row (status already decided), one a copy and one for its journey.
// Anything else (events of a message indexed earlier, events before
// their message) takes the general path: upserts, then the status
// recomputed from every copy.
func (ix *Index) Apply(ctx context.Context, items []Item) error {
	return ix.apply(ctx, items, time.Time{})
}

// holdFor is how long the Indexer holds a new message back, waiting for
// the rest of its journey (its copies routed and delivered), so that it
// is written once; maxHeld bounds how many wait.
const (
	holdFor = 500 * time.Millisecond
	maxHeld = 50_000
)

// apply is Apply; with now set (the Indexer's live batches) a young
// message whose journey is not complete is held for the next batch
// instead of written, as are events of a message whose record has not
// been read yet. The positions written stop before anything held: after
// a crash the streams are read again from there, and records applied
// twice change nothing (journeys drop repeated lines when read).
func (ix *Index) apply(ctx context.Context, items []Item, now time.Time) error {
	b := ix.held
	ix.held = nil
	if len(items) == 0 && b == nil {
		return nil
	}
	if b == nil {
		b = &batch{byID: map[uint64]*change{}}
	}
	if ix.seen == nil {
		pos, err := ix.Positions(ctx)
		if err != nil {
			return err
		}
		ix.seen, ix.covered = pos, pos[wire.StreamIn]
	}
	for _, it := range items {
		switch it.Stream {
		case wire.StreamIn:
			b.of(it.Seq).setHead(headOfRecord(it))
		case wire.StreamEvents:
			b.events(it)
		case wire.StreamDLQ:
			b.dlq = append(b.dlq, it)
		case wire.StreamAudit:
			b.audit = append(b.audit, it)
		}
		ix.seen[it.Stream] = max(ix.seen[it.Stream], it.Seq)
	}
	for _, id := range b.order {
		if b.byID[id].head != nil {
			ix.headSeen(id, now)
		}
	}
	conn, err := ix.writer(ctx)
	if err != nil {
		return err
	}
	// BEGIN and COMMIT by hand, not database/sql's Tx: statements
	// prepared on the connection then serve every batch.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// The batch's statements do not watch ctx: for a statement whose
	// context can end, the SQLite driver starts a goroutine to interrupt
	// it, and a batch runs thousands of short ones. The loop below looks
	// at ctx between messages instead.
	a := applier{ix: ix, ctx: context.WithoutCancel(ctx)}
	known, err := a.known(b)
	if err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	var held *batch
	if !now.IsZero() {
		held = b.hold(known, ix.lastHead, now)
	}
	a.newMessages = bulk{a: &a, head: `INSERT INTO messages(id, received_at, listener, sending_app, sending_fac, type, event, control_id, version, remote, size, replay_of, routed, unrouted, status) VALUES `, cols: 15}
	a.newCopies = bulk{a: &a, head: `INSERT INTO dests(message, destination, status, at, attempts, code, reason, out_seq, changed) VALUES `, cols: 9}
	a.newJourneys = bulk{a: &a, head: `INSERT INTO journeys(message, body) VALUES `, cols: 2}
	a.newKeys = bulk{a: &a, head: `INSERT OR IGNORE INTO keys(name, value, message) VALUES `, cols: 3}
	a.lateMessages = bulk{a: &a, head: `INSERT OR IGNORE INTO messages(id) VALUES `, cols: 1}
	// As merge: a routed event repeated must not move a delivered copy back to queued.
	a.lateQueued = bulk{a: &a, head: `INSERT INTO dests(message, destination, status, at, out_seq, changed) VALUES `, cols: 6,
		tail: ` ON CONFLICT(message, destination) DO UPDATE SET out_seq=excluded.out_seq, changed=excluded.changed`}
	a.lateCopies = bulk{a: &a, head: `INSERT INTO dests(message, destination, status, at, attempts, code, reason) VALUES `, cols: 7,
		tail: ` ON CONFLICT(message, destination) DO UPDATE SET status=excluded.status, at=excluded.at,
			attempts=max(dests.attempts, excluded.attempts), code=excluded.code, reason=excluded.reason
			WHERE excluded.at >= dests.at`}
	a.lateJourneys = bulk{a: &a, head: `INSERT INTO journeys(message, body) VALUES `, cols: 2,
		tail: ` ON CONFLICT(message) DO UPDATE SET body = journeys.body || excluded.body`}
	for i, id := range b.order {
		if i%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		c := b.byID[id]
		if c.head != nil && !known[id] {
			err = a.insert(c)
		} else {
			err = a.merge(c)
		}
		if err != nil {
			return fmt.Errorf("history index: message %d: %w", id, err)
		}
	}
	for _, bk := range []*bulk{&a.newMessages, &a.newCopies, &a.newJourneys, &a.newKeys, &a.lateMessages, &a.lateQueued, &a.lateCopies, &a.lateJourneys} {
		if err := bk.flush(); err != nil {
			return fmt.Errorf("history index: %w", err)
		}
	}
	if err := a.routedLate(); err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	if err := a.refreshLate(); err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	for _, it := range b.dlq {
		if err := a.deadLetter(it); err != nil {
			return fmt.Errorf("history index: %s %d: %w", it.Stream, it.Seq, err)
		}
	}
	// After the letters: a purge may share a batch with its letter.
	for _, id := range b.gone {
		if _, err := a.exec(`DELETE FROM dlq WHERE id = ?`, id); err != nil {
			return fmt.Errorf("history index: dead letter %d: %w", id, err)
		}
	}
	for _, it := range b.audit {
		if err := a.audit(it); err != nil {
			return fmt.Errorf("history index: %s %d: %w", it.Stream, it.Seq, err)
		}
	}
	for _, r := range b.refused {
		e := r.e
		if _, err := a.exec(`INSERT OR REPLACE INTO refused(seq, line, at, listener, remote, ack, code, reason, type, event, control_id, sending_app, sending_fac, size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.seq, r.line, e.At.UnixNano(), e.Listener, e.Remote, e.Ack, e.Code, e.Reason,
			e.Type, e.Trigger, e.ControlID, e.SendingApp, e.SendingFac, e.Size); err != nil {
			return fmt.Errorf("history index: refused message: %w", err)
		}
	}
	p, _ := json.Marshal(held.positions(ix.seen, ix.covered))
	if _, err := a.exec(`INSERT OR REPLACE INTO meta(k, v) VALUES ('positions', ?)`, string(p)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	done = true
	ix.held = held
	return nil
}

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

// batch is what one Apply learned, message by message.
type batch struct {
	byID    map[uint64]*change
	order   []uint64 // messages in the order first seen
	dlq     []Item
	audit   []Item
	gone    []uint64 // dead letters replayed or purged
	refused []refusedRow
}

// refusedRow is a message ingest did not store: where its event stands
// in HL7_EVENTS (a record holds several lines) and the event.
type refusedRow struct {
	seq  uint64
	line int
	e    wire.Event
}

// change is what a batch says about one message.
type change struct {
	id      uint64
	head    *head  // its summary, when the batch has its record or received event
	journey []byte // its events, one JSON object a line
	routed  bool   // a routed event, or the router's dead letter
	// firstEvents is the first HL7_EVENTS record with an event of it;
	// since is when it was first held without its record.
	firstEvents uint64
	since       time.Time
	unrouted    *bool // the last routed event's verdict
	copies      []*copyChange
}

// copyChange is what a batch says about one destination's copy.
type copyChange struct {
	dest string
	// From a routed event: the copy was queued.
	queued   bool
	queuedAt int64
	outSeq   uint64
	changed  bool
	// From the latest delivery event (by its time): the copy's status.
	set      bool
	status   string
	at       int64
	attempts int
	code     string
	reason   string
}

func (b *batch) of(id uint64) *change {
	c := b.byID[id]
	if c == nil {
		c = &change{id: id}
		b.byID[id] = c
		b.order = append(b.order, id)
	}
	return c
}

func (c *change) copy(dest string) *copyChange {
	for _, d := range c.copies {
		if d.dest == dest {
			return d
		}
	}
	d := &copyChange{dest: dest}
	c.copies = append(c.copies, d)
	return d
}

// setTo moves the copy to status unless a later event already moved it
// (events of a cluster's brokers may interleave).
func (d *copyChange) setTo(status string, at int64, attempts int, code, reason string) {
	if d.set && at < d.at {
		return
	}
	d.set, d.status, d.at, d.code, d.reason = true, status, at, code, reason
	d.attempts = max(d.attempts, attempts)
}

func (b *batch) events(it Item) {
	n := 0
	for line := range bytes.SplitSeq(bytes.TrimSpace(it.Data), []byte("\n")) {
		n++
		var e wire.Event
		if wire.ParseEvent(line, &e) != nil {
			continue // not ours
		}
		if e.Kind == wire.EventRefused {
			b.refused = append(b.refused, refusedRow{seq: it.Seq, line: n, e: e})
			continue
		}
		if e.Message == 0 {
			continue // not about a message
		}
		c := b.of(e.Message)
		if c.firstEvents == 0 || it.Seq < c.firstEvents {
			c.firstEvents = it.Seq
		}
		if e.HasHead() {
			c.setHead(headOfEvent(e))
			if e.Keys != nil { // values for the index, not for the journey
				e.Keys = nil
				if l, err := wire.AppendEvent(nil, e); err == nil {
					line = l
				}
			}
		}
		c.journey = append(append(c.journey, line...), '\n')
		b.event(c, e)
	}
}

func (b *batch) event(c *change, e wire.Event) {
	at := e.At.UnixNano()
	switch e.Kind {
	case wire.EventRouted:
		c.routed = true
		c.unrouted = &e.Unrouted
		for _, dest := range e.Destinations {
			d := c.copy(dest)
			d.queued, d.outSeq, d.changed = true, e.OutSeqs[dest], slices.Contains(e.Changed, dest)
			if d.queuedAt == 0 {
				d.queuedAt = at
			}
		}
	case wire.EventAttempt:
		c.copy(e.Destination).setTo(StatusRetrying, at, e.Attempt, e.Code, e.Reason)
	case wire.EventDelivered:
		c.copy(e.Destination).setTo(StatusDelivered, at, e.Attempt, e.Code, "")
	case wire.EventDeadLettered:
		if e.Destination == wire.TransformDLQ {
			c.routed = true
		}
		c.copy(e.Destination).setTo(StatusDeadLettered, at, e.Attempt, e.Code, e.Reason)
	case wire.EventReplayed:
		if e.DLQ != 0 {
			b.gone = append(b.gone, e.DLQ)
		}
		if e.Destination != "" {
			if e.DLQ != 0 && e.Reason != "" { // replayed to another destination: the old one's letter is gone
				c.copy(e.Reason).setTo(StatusPurged, at, 0, "", "replayed to "+e.Destination)
			}
			c.copy(e.Destination).setTo(StatusQueued, at, 0, "", "")
		}
	case wire.EventPurged:
		b.gone = append(b.gone, e.DLQ)
		c.copy(e.Destination).setTo(StatusPurged, at, 0, "", "purged by "+e.By)
	}
}

// touched: the batch may change the message's status.
func (c *change) touched() bool { return c.routed || len(c.copies) > 0 }

type applier struct {
	newMessages, newCopies, newJourneys, newKeys bulk
	// Events of messages without their record in the batch (routed and
	// delivered events of messages indexed earlier: the usual case while
	// a queue has a backlog or the index is behind): upserted many rows a
	// statement, their routed flags and statuses set together at the end.
	lateMessages, lateQueued, lateCopies, lateJourneys bulk
	lateRouted                                         [3][]uint64
	lateRefresh                                        []uint64
	ix                                                 *Index
	ctx                                                context.Context
	parsed                                             hl7.Message
}

// known returns which of b's messages with their record in b already
// have a row. HL7_IN records arrive in order, so one range read covers
// a batch.
func (a *applier) known(b *batch) (map[uint64]bool, error) {
	known := map[uint64]bool{}
	var ids []uint64
	for _, id := range b.order {
		if b.byID[id].head != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return known, nil
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	st, err := a.ix.prepared(a.ctx, `SELECT id FROM messages WHERE id BETWEEN ? AND ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(a.ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rows.Err()
}

// insert writes a message new to the index whose record is in the batch:
// no event of it came before, so the batch holds all there is to know.
func (a *applier) insert(c *change) error {
	h := c.head
	unrouted := c.unrouted != nil && *c.unrouted
	if err := a.newMessages.add(c.id, h.at.UnixNano(), h.listener, h.sendingApp, h.sendingFac, h.typ, h.event, h.controlID, h.version,
		h.remote, h.size, h.replayOf, c.routed, unrouted, c.status()); err != nil {
		return err
	}
	for _, d := range c.copies {
		status, at := StatusQueued, d.queuedAt
		if d.set {
			status, at = d.status, d.at
		}
		if err := a.newCopies.add(c.id, d.dest, status, at, d.attempts, d.code, d.reason, d.outSeq, d.changed); err != nil {
			return err
		}
	}
	if err := a.keys(c); err != nil {
		return err
	}
	if len(c.journey) > 0 {
		return a.newJourneys.add(c.id, c.journey)
	}
	return nil
}

// bulkRows is how many rows one INSERT of new rows carries at most.
const bulkRows = 32

// bulk gathers new rows of one table into INSERTs of up to bulkRows
// rows: a statement's fixed cost is shared by many rows.
type bulk struct {
	a    *applier
	head string // INSERT INTO t(columns) VALUES
	tail string // after the rows: ON CONFLICT ..., or nothing
	cols int
	args []any
	rows int
}

func (b *bulk) add(args ...any) error {
	b.args = append(b.args, args...)
	b.rows++
	if b.rows == bulkRows {
		return b.flush()
	}
	return nil
}

func (b *bulk) flush() error {
	if b.rows == 0 {
		return nil
	}
	row := "(?" + strings.Repeat(", ?", b.cols-1) + ")"
	_, err := b.a.exec(b.head+row+strings.Repeat(", "+row, b.rows-1)+b.tail, b.args...)
	b.args, b.rows = b.args[:0], 0
	return err
}

// status is a new message's status from the batch alone: the first that
// applies of a dead letter, a retry, a queued copy, a purged letter, a
// delivered copy; without copies, unrouted, filtered or received. The
// same order as refresh.
func (c *change) status() string {
	has := func(status string) bool {
		return slices.ContainsFunc(c.copies, func(d *copyChange) bool {
			return d.status == status || (!d.set && status == StatusQueued)
		})
	}
	for _, s := range []string{StatusDeadLettered, StatusRetrying, StatusQueued, StatusPurged} {
		if has(s) {
			return s
		}
	}
	switch {
	case len(c.copies) > 0:
		return StatusDelivered
	case c.routed && c.unrouted != nil && *c.unrouted:
		return StatusUnrouted
	case c.routed:
		return StatusFiltered
	}
	return StatusReceived
}

// merge applies a batch's changes to a message the index may already
// hold: its record (or received event) came with this batch, after
// other events of it (a row was added to hang those on, filled now), or
// again. A change without the record goes to mergeLate.
func (a *applier) merge(c *change) error {
	h := c.head
	if h == nil {
		return a.mergeLate(c)
	}
	_, err := a.exec(`INSERT INTO messages(id, received_at, listener, sending_app, sending_fac, type, event, control_id, version, remote, size, replay_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET received_at=excluded.received_at, listener=excluded.listener, sending_app=excluded.sending_app,
		sending_fac=excluded.sending_fac, type=excluded.type, event=excluded.event, control_id=excluded.control_id,
		version=excluded.version, remote=excluded.remote, size=excluded.size, replay_of=excluded.replay_of`,
		c.id, h.at.UnixNano(), h.listener, h.sendingApp, h.sendingFac, h.typ, h.event, h.controlID, h.version,
		h.remote, h.size, h.replayOf)
	if err != nil {
		return err
	}
	if err := a.keys(c); err != nil {
		return err
	}
	if c.routed {
		if c.unrouted != nil {
			_, err = a.exec(`UPDATE messages SET routed = 1, unrouted = ? WHERE id = ?`, *c.unrouted, c.id)
		} else {
			_, err = a.exec(`UPDATE messages SET routed = 1 WHERE id = ?`, c.id)
		}
		if err != nil {
			return err
		}
	}
	for _, d := range c.copies {
		if d.queued {
			// A routed event repeated (an input routed again after a
			// crash) must not move a delivered copy back to queued.
			if _, err := a.exec(`INSERT INTO dests(message, destination, status, at, out_seq, changed) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT(message, destination) DO UPDATE SET out_seq=excluded.out_seq, changed=excluded.changed`,
				c.id, d.dest, StatusQueued, d.queuedAt, d.outSeq, d.changed); err != nil {
				return err
			}
		}
		if d.set {
			if _, err := a.exec(`INSERT INTO dests(message, destination, status, at, attempts, code, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(message, destination) DO UPDATE SET status=excluded.status, at=excluded.at,
				attempts=max(dests.attempts, excluded.attempts), code=excluded.code, reason=excluded.reason
				WHERE excluded.at >= dests.at`, c.id, d.dest, d.status, d.at, d.attempts, d.code, d.reason); err != nil {
				return err
			}
		}
	}
	if len(c.journey) > 0 {
		if _, err := a.exec(`INSERT INTO journeys(message, body) VALUES (?, ?)
			ON CONFLICT(message) DO UPDATE SET body = journeys.body || excluded.body`, c.id, c.journey); err != nil {
			return err
		}
	}
	if c.touched() {
		return a.refresh(c.id)
	}
	return nil
}

// keys indexes the message's search keys (those this index is for).
func (a *applier) keys(c *change) error {
	h := c.head
	if h.data != nil { // from its record: read them here
		if len(a.ix.paths) == 0 || a.parsed.ParseWith(h.data, indexLimits) != nil {
			return nil
		}
		h.keys = hl7.SearchKeyValues(&a.parsed, a.ix.paths)
	}
	for name, values := range h.keys {
		if _, ok := a.ix.paths[name]; !ok {
			continue // made by a broker with other search keys
		}
		for _, v := range values {
			if err := a.newKeys.add(name, v, c.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// head is what the index shows of a message: from its HL7_IN record
// (read when the index catches up) or from its received event (live).
type head struct {
	inSeq                                        uint64 // from its record: the record's sequence
	data                                         []byte // from its record: the message, for its search keys
	at                                           time.Time
	listener, sendingApp, sendingFac, typ, event string
	controlID, version, remote, replayOf         string
	size                                         int
	keys                                         map[string][]string // from its received event
}

func headOfRecord(it Item) *head {
	h := it.Header
	return &head{inSeq: it.Seq, data: it.Data, at: headerTime(h, wire.HeaderReceivedAt, it.Time), listener: h.Get(wire.HeaderListener),
		sendingApp: h.Get(wire.HeaderSendingApp), sendingFac: h.Get(wire.HeaderSendingFac), typ: h.Get(wire.HeaderType),
		event: h.Get(wire.HeaderEvent), controlID: h.Get(wire.HeaderControlID), version: h.Get(wire.HeaderVersion),
		remote: h.Get(wire.HeaderRemoteAddr), replayOf: h.Get(wire.HeaderReplayOf), size: len(it.Data)}
}

func headOfEvent(e wire.Event) *head {
	return &head{at: e.At, listener: e.Listener, sendingApp: e.SendingApp, sendingFac: e.SendingFac, typ: e.Type, event: e.Trigger,
		controlID: e.ControlID, version: e.Version, remote: e.Remote, replayOf: e.ReplayOf, size: e.Size, keys: e.Keys}
}

// setHead keeps h; a record's head wins over an event's (its search keys
// are read by this index, for its own search keys).
func (c *change) setHead(h *head) {
	if c.head == nil || h.inSeq > 0 {
		c.head = h
	}
}

func (a *applier) deadLetter(it Item) error {
	h := it.Header
	inSeq, _ := strconv.ParseUint(h.Get(wire.HeaderInSeq), 10, 64)
	attempts, _ := strconv.Atoi(h.Get(wire.HeaderDLQAttempts))
	dest := strings.TrimPrefix(it.Subject, wire.SubjectDLQ+".")
	at := headerTime(h, wire.HeaderDLQTime, it.Time)
	_, err := a.exec(`INSERT OR REPLACE INTO dlq(id, message, control_id, type, event, destination, reason, attempts, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		it.Seq, inSeq, h.Get(wire.HeaderControlID), h.Get(wire.HeaderType), h.Get(wire.HeaderEvent), dest, h.Get(wire.HeaderDLQReason), attempts, at.UnixNano())
	return err
}

func (a *applier) audit(it Item) error {
	var e wire.AuditEntry
	if json.Unmarshal(it.Data, &e) != nil {
		return nil
	}
	ids, _ := json.Marshal(e.IDs)
	_, err := a.exec(`INSERT OR REPLACE INTO audit(seq, at, user, action, result, ids, detail, remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		it.Seq, e.At.UnixNano(), e.User, e.Action, e.Result, string(ids), e.Detail, e.Remote)
	return err
}

// statusCase is a message's status from its copies' statuses, in order
// of what needs a person most: a dead letter, a retry, a queued copy, a
// purged letter; then delivered; without copies, unrouted, filtered or
// received. For an UPDATE of messages.
const statusCase = `CASE
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = messages.id AND status = 'dead_lettered') THEN 'dead_lettered'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = messages.id AND status = 'retrying') THEN 'retrying'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = messages.id AND status = 'queued') THEN 'queued'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = messages.id AND status = 'purged') THEN 'purged'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = messages.id) THEN 'delivered'
		WHEN routed AND unrouted THEN 'unrouted'
		WHEN routed THEN 'filtered'
		ELSE 'received' END`

// refresh sets a message's status from its copies (statusCase). One
// prepared statement: it runs for every message touched.
func (a *applier) refresh(id uint64) error {
	_, err := a.exec(`UPDATE messages SET status = `+statusCase+` WHERE id = ?`, id)
	return err
}

// mergeLate is merge for a change without the message's record or
// received event (its routed and delivery events, which come after the
// message was indexed while a queue has a backlog or the index is
// behind), by the late bulks: the same rows as merge writes, many a
// statement. Its routed flag and status are set by routedLate and
// refreshLate once every row is written.
func (a *applier) mergeLate(c *change) error {
	if c.touched() {
		if err := a.lateMessages.add(c.id); err != nil {
			return err
		}
		a.lateRefresh = append(a.lateRefresh, c.id)
	}
	if c.routed {
		k := routedOnly
		if c.unrouted != nil {
			k = routedWith(*c.unrouted)
		}
		a.lateRouted[k] = append(a.lateRouted[k], c.id)
	}
	for _, d := range c.copies {
		// Queued and status rows of one copy may be written in either
		// order: a queued row never changes a status (see merge), and a
		// status row applies over a queued one by its later time.
		if d.queued {
			if err := a.lateQueued.add(c.id, d.dest, StatusQueued, d.queuedAt, d.outSeq, d.changed); err != nil {
				return err
			}
		}
		if d.set {
			if err := a.lateCopies.add(c.id, d.dest, d.status, d.at, d.attempts, d.code, d.reason); err != nil {
				return err
			}
		}
	}
	if len(c.journey) > 0 {
		if err := a.lateJourneys.add(c.id, c.journey); err != nil {
			return err
		}
	}
	return nil
}

// The routed updates mergeLate gathers: routed, and unrouted left as it
// is, set to 0 or set to 1.
const (
	routedOnly = iota
	routedMatched
	routedUnrouted
)

func routedWith(unrouted bool) int {
	if unrouted {
		return routedUnrouted
	}
	return routedMatched
}

// routedLate sets the routed flag of every message mergeLate gathered,
// bulkRows a statement; lateMessages must be flushed first.
func (a *applier) routedLate() error {
	set := [...]string{routedOnly: `routed = 1`, routedMatched: `routed = 1, unrouted = 0`, routedUnrouted: `routed = 1, unrouted = 1`}
	for k, all := range a.lateRouted {
		if err := a.eachChunk(all, `UPDATE messages SET `+set[k]+` WHERE id IN `); err != nil {
			return err
		}
		a.lateRouted[k] = all[:0]
	}
	return nil
}

// refreshLate refreshes the status of every message mergeLate wrote,
// bulkRows a statement; the late bulks must be flushed first.
func (a *applier) refreshLate() error {
	err := a.eachChunk(a.lateRefresh, `UPDATE messages SET status = `+statusCase+` WHERE id IN `)
	a.lateRefresh = a.lateRefresh[:0]
	return err
}

// eachChunk runs query, which ends in "IN ", with ids in lists of up to
// bulkRows.
func (a *applier) eachChunk(ids []uint64, query string) error {
	for chunk := range slices.Chunk(ids, bulkRows) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := a.exec(query+`(?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// exec runs query with args through a statement prepared once per
// transaction: a batch runs the same few statements thousands of times.
func (a *applier) exec(query string, args ...any) (sql.Result, error) {
	st, err := a.ix.prepared(a.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(a.ctx, args...)
}

// writer is the connection batches are written on, kept for the
// Index's life.
func (ix *Index) writer(ctx context.Context) (*sql.Conn, error) {
	if ix.wconn == nil {
		c, err := ix.w.Conn(ctx)
		if err != nil {
			return nil, err
		}
		ix.wconn = c
	}
	return ix.wconn, nil
}

// prepared returns query prepared on the writer's connection, once for
// the Index's life: a batch's few statements are the same in every batch.
func (ix *Index) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := ix.stmts[query]; ok {
		return st, nil
	}
	conn, err := ix.writer(ctx)
	if err != nil {
		return nil, err
	}
	st, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if ix.stmts == nil {
		ix.stmts = map[string]*sql.Stmt{}
	}
	ix.stmts[query] = st
	return st, nil
}

func headerTime(h nats.Header, key string, def time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, h.Get(key)); err == nil {
		return t
	}
	return def
}
