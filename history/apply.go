package history

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
func (ix *Index) Apply(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	pos, err := ix.Positions(ctx)
	if err != nil {
		return err
	}
	tx, err := ix.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	a := applier{ix: ix, tx: tx, touched: map[uint64]bool{}, stmts: map[string]*sql.Stmt{}}
	defer a.close()
	// Messages first: their rows are then there for their events.
	slices.SortStableFunc(items, func(x, y Item) int { return cmp.Compare(streamOrder(x.Stream), streamOrder(y.Stream)) })
	for _, it := range items {
		var err error
		switch it.Stream {
		case wire.StreamIn:
			err = a.message(it)
		case wire.StreamEvents:
			err = a.events(it)
		case wire.StreamDLQ:
			err = a.deadLetter(it)
		case wire.StreamAudit:
			err = a.audit(it)
		}
		if err != nil {
			return fmt.Errorf("history index: %s %d: %w", it.Stream, it.Seq, err)
		}
		pos[it.Stream] = max(pos[it.Stream], it.Seq)
	}
	for id := range a.touched {
		if err := a.refresh(id); err != nil {
			return fmt.Errorf("history index: message %d: %w", id, err)
		}
	}
	p, _ := json.Marshal(pos)
	if _, err := tx.Exec(`INSERT OR REPLACE INTO meta(k, v) VALUES ('positions', ?)`, string(p)); err != nil {
		return err
	}
	return tx.Commit()
}

// update runs an UPDATE of message id's row; when there is no row yet
// (an event may come before its message: another stream, another batch)
// it adds one to hang the event on, and runs the UPDATE again. Messages
// are applied before events in a batch, so that is rare.
func (a *applier) update(id uint64, query string, args ...any) error {
	res, err := a.exec(query, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	if _, err := a.exec(`INSERT OR IGNORE INTO messages(id) VALUES (?)`, id); err != nil {
		return err
	}
	_, err = a.exec(query, args...)
	return err
}

type applier struct {
	ix      *Index
	tx      *sql.Tx
	stmts   map[string]*sql.Stmt // prepared once a transaction
	parsed  hl7.Message
	touched map[uint64]bool // messages whose status may have changed
}

func streamOrder(s string) int {
	if s == wire.StreamIn {
		return 0
	}
	return 1
}

func headerTime(h nats.Header, key string, def time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, h.Get(key)); err == nil {
		return t
	}
	return def
}

func (a *applier) message(it Item) error {
	h := it.Header
	at := headerTime(h, wire.HeaderReceivedAt, it.Time)
	_, err := a.exec(`INSERT INTO messages(id, received_at, listener, sending_app, sending_fac, type, event, control_id, version, remote, size, replay_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET received_at=excluded.received_at, listener=excluded.listener, sending_app=excluded.sending_app,
		sending_fac=excluded.sending_fac, type=excluded.type, event=excluded.event, control_id=excluded.control_id,
		version=excluded.version, remote=excluded.remote, size=excluded.size, replay_of=excluded.replay_of`,
		it.Seq, at.UnixNano(), h.Get(wire.HeaderListener), h.Get(wire.HeaderSendingApp), h.Get(wire.HeaderSendingFac),
		h.Get(wire.HeaderType), h.Get(wire.HeaderEvent), h.Get(wire.HeaderControlID), h.Get(wire.HeaderVersion),
		h.Get(wire.HeaderRemoteAddr), len(it.Data), h.Get(wire.HeaderReplayOf))
	if err != nil {
		return err
	}
	if len(a.ix.keys) > 0 && a.parsed.ParseWith(it.Data, indexLimits) == nil {
		for name, path := range a.ix.keys {
			p, err := hl7.ParsePath(path)
			if err != nil {
				continue
			}
			// Every repetition counts: PID-3 often holds an MRN and more.
			for _, v := range a.parsed.Values(p) {
				if len(v) == 0 {
					continue
				}
				if _, err := a.exec(`INSERT OR IGNORE INTO keys(name, value, message) VALUES (?, ?, ?)`, name, string(v), it.Seq); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (a *applier) events(it Item) error {
	for line := range bytes.SplitSeq(bytes.TrimSpace(it.Data), []byte("\n")) {
		var e wire.Event
		if json.Unmarshal(line, &e) != nil || e.Message == 0 {
			continue // not ours, or not about a message
		}
		if err := a.event(e, line); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) event(e wire.Event, line []byte) error {
	at := e.At.UnixNano()
	if _, err := a.exec(`INSERT INTO events(message, at, body) VALUES (?, ?, ?)`, e.Message, at, string(line)); err != nil {
		return err
	}
	if e.Kind == wire.EventReceived {
		return nil // in the journey only: the message's row comes from HL7_IN
	}
	a.touched[e.Message] = true
	// setDest moves a destination's copy to status, unless a later event
	// already moved it (events of a cluster's brokers may interleave).
	setDest := func(dest, status string, attempts int, code, reason string) error {
		_, err := a.exec(`INSERT INTO dests(message, destination, status, at, attempts, code, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(message, destination) DO UPDATE SET status=excluded.status, at=excluded.at,
			attempts=max(dests.attempts, excluded.attempts), code=excluded.code, reason=excluded.reason
			WHERE excluded.at >= dests.at`, e.Message, dest, status, at, attempts, code, reason)
		return err
	}
	switch e.Kind {
	case wire.EventRouted:
		if err := a.update(e.Message, `UPDATE messages SET routed = 1, unrouted = ? WHERE id = ?`, e.Unrouted, e.Message); err != nil {
			return err
		}
		for _, d := range e.Destinations {
			changed := 0
			for _, c := range e.Changed {
				if c == d {
					changed = 1
				}
			}
			// A routed event repeated (an input routed again after a
			// crash) must not move a delivered copy back to queued.
			if _, err := a.exec(`INSERT INTO dests(message, destination, status, at, out_seq, changed) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT(message, destination) DO UPDATE SET out_seq=excluded.out_seq, changed=excluded.changed`,
				e.Message, d, StatusQueued, at, e.OutSeqs[d], changed); err != nil {
				return err
			}
		}
	case wire.EventAttempt:
		return setDest(e.Destination, StatusRetrying, e.Attempt, e.Code, e.Reason)
	case wire.EventDelivered:
		return setDest(e.Destination, StatusDelivered, e.Attempt, e.Code, "")
	case wire.EventDeadLettered:
		if e.Destination == wire.TransformDLQ {
			if err := a.update(e.Message, `UPDATE messages SET routed = 1 WHERE id = ?`, e.Message); err != nil {
				return err
			}
		}
		return setDest(e.Destination, StatusDeadLettered, e.Attempt, e.Code, e.Reason)
	case wire.EventReplayed:
		if e.DLQ != 0 {
			if _, err := a.exec(`DELETE FROM dlq WHERE id = ?`, e.DLQ); err != nil {
				return err
			}
		}
		if e.Destination != "" {
			if e.DLQ != 0 && e.Reason != "" { // replayed to another destination: the old one's letter is gone
				if err := setDest(e.Reason, StatusPurged, 0, "", "replayed to "+e.Destination); err != nil {
					return err
				}
			}
			return setDest(e.Destination, StatusQueued, 0, "", "")
		}
	case wire.EventPurged:
		if _, err := a.exec(`DELETE FROM dlq WHERE id = ?`, e.DLQ); err != nil {
			return err
		}
		return setDest(e.Destination, StatusPurged, 0, "", "purged by "+e.By)
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
	_, err := a.exec(`INSERT OR REPLACE INTO audit(seq, at, user, action, result, ids, detail, remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		it.Seq, e.At.UnixNano(), e.User, e.Action, e.Result, string(ids), e.Detail, e.Remote)
	return err
}

// refresh sets a message's status from its copies' statuses, in order
// of what needs a person most: a dead letter, a retry, a queued copy, a
// purged letter; then delivered; without copies, unrouted, filtered or
// received. One prepared statement: it runs for every message touched.
func (a *applier) refresh(id uint64) error {
	return a.update(id, `UPDATE messages SET status = CASE
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = ?1 AND status = 'dead_lettered') THEN 'dead_lettered'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = ?1 AND status = 'retrying') THEN 'retrying'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = ?1 AND status = 'queued') THEN 'queued'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = ?1 AND status = 'purged') THEN 'purged'
		WHEN EXISTS (SELECT 1 FROM dests WHERE message = ?1) THEN 'delivered'
		WHEN routed AND unrouted THEN 'unrouted'
		WHEN routed THEN 'filtered'
		ELSE 'received' END
		WHERE id = ?1`, id)
}

// exec runs query with args through a statement prepared once per
// transaction: a batch runs the same few statements thousands of times.
func (a *applier) exec(query string, args ...any) (sql.Result, error) {
	st, ok := a.stmts[query]
	if !ok {
		var err error
		if st, err = a.tx.Prepare(query); err != nil {
			return nil, err
		}
		a.stmts[query] = st
	}
	return st.Exec(args...)
}

func (a *applier) close() {
	for _, st := range a.stmts {
		st.Close()
	}
}
