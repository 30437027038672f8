package history

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
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
		case StreamTexts:
			b.texts = append(b.texts, it)
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
	a.newMessages = bulk{a: &a, head: `INSERT INTO messages(id, received_at, listener, sending_app, sending_fac, type, event, control_id, version, remote, size, replay_of, routed, unrouted, status, digest) VALUES `, cols: 16}
	a.newCopies = bulk{a: &a, head: `INSERT INTO dests(message, destination, status, at, attempts, code, reason, out_seq, changed) VALUES `, cols: 9}
	a.newJourneys = bulk{a: &a, head: `INSERT INTO journeys(message, body) VALUES `, cols: 2}
	a.newKeys = bulk{a: &a, head: `INSERT OR IGNORE INTO keys(name, value, message, shown) VALUES `, cols: 4}
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
	// Each message's words (applied twice, the same again).
	texts := bulk{a: &a, head: `INSERT OR REPLACE INTO texts(rowid, body) VALUES `, cols: 2}
	for _, it := range b.texts {
		if err := texts.add(it.Seq, textOf(it.Data)); err != nil {
			return fmt.Errorf("history index: content: %w", err)
		}
	}
	if err := texts.flush(); err != nil {
		return fmt.Errorf("history index: content: %w", err)
	}
	// What the latest attempt of each copy sent and got back.
	sent := bulk{a: &a, head: `INSERT INTO sent(message, destination, at, attempt, payload, name, size, response, sha256) VALUES `, cols: 9,
		tail: ` ON CONFLICT(message, destination) DO UPDATE SET at=excluded.at, attempt=excluded.attempt, payload=excluded.payload,
			name=excluded.name, size=excluded.size, response=excluded.response, sha256=excluded.sha256 WHERE excluded.at >= sent.at`}
	for _, e := range b.sent {
		if err := sent.add(e.Message, e.Destination, e.At.UnixNano(), e.Attempt, e.Sent, e.SentName, cmp.Or(e.SentSize, len(e.Sent)), e.Response, sumBytes(e.SHA256)); err != nil {
			return fmt.Errorf("history index: what was sent: %w", err)
		}
	}
	if err := sent.flush(); err != nil {
		return fmt.Errorf("history index: what was sent: %w", err)
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
		if _, err := a.exec(`INSERT OR IGNORE INTO refused(seq, line, at, listener, remote, ack, code, reason, type, event, control_id, sending_app, sending_fac, size)
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
