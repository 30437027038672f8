package history

// The writer: a batch merged into the index's tables in one transaction.

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

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
		h.remote, h.size, h.replayOf, c.routed, unrouted, c.status(), h.digest); err != nil {
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
	_, err := a.exec(`INSERT INTO messages(id, received_at, listener, sending_app, sending_fac, type, event, control_id, version, remote, size, replay_of, digest)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET received_at=excluded.received_at, listener=excluded.listener, sending_app=excluded.sending_app,
		sending_fac=excluded.sending_fac, type=excluded.type, event=excluded.event, control_id=excluded.control_id,
		version=excluded.version, remote=excluded.remote, size=excluded.size, replay_of=excluded.replay_of,
		digest=CASE WHEN excluded.digest != 0 THEN excluded.digest ELSE messages.digest END`,
		c.id, h.at.UnixNano(), h.listener, h.sendingApp, h.sendingFac, h.typ, h.event, h.controlID, h.version,
		h.remote, h.size, h.replayOf, h.digest)
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
			shown := "" // the value as the message has it, when the index keeps another
			if a.ix.fold[name] {
				shown, v = v, hl7.FoldKey(v)
			}
			if err := a.newKeys.add(name, v, c.id, shown); err != nil {
				return err
			}
		}
	}
	return nil
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
	keys := []byte{}
	if len(e.Keys) > 0 {
		keys, _ = json.Marshal(e.Keys)
	}
	_, err := a.exec(`INSERT OR REPLACE INTO audit(seq, at, user, action, result, ids, detail, remote, keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		it.Seq, e.At.UnixNano(), e.User, e.Action, e.Result, string(ids), e.Detail, e.Remote, string(keys))
	if err != nil {
		return err
	}
	for name, values := range e.Keys {
		for _, v := range values {
			if a.ix.fold[name] {
				v = hl7.FoldKey(v)
			}
			if _, err := a.exec(`INSERT OR IGNORE INTO audit_keys(name, value, seq) VALUES (?, ?, ?)`, name, v, it.Seq); err != nil {
				return err
			}
		}
	}
	return nil
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
