package history

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// ReconcileReason marks a journey event rebuilt by Reconcile.
const ReconcileReason = "recovered: the queue had acknowledged this copy, and its journey event was lost (a crash)"

// reconcileBatch bounds the copies one Reconcile looks at.
const reconcileBatch = 1000

// Reconcile makes the index whole after a crash. Journey events are
// recorded after the fact, so a broker killed between acknowledging a
// copy on its queue and recording the event leaves the index saying
// "queued" for a copy that was delivered (or dead-lettered), for ever:
// an operator would replay it and send it twice. Reconcile reads what
// each destination's queue has acknowledged (its consumers' ack floors)
// and, for a copy still queued or retrying at or below the floor and
// older than minAge (its events have had time to arrive), records the
// event that was lost, from the streams: dead_lettered when HL7_DLQ holds
// its letter, else delivered, each marked ReconcileReason. It returns how
// many it rebuilt.
func (o *Ops) Reconcile(ctx context.Context, minAge time.Duration) (int, error) {
	if o.Index == nil || o.Events == nil {
		return 0, nil
	}
	floors, err := o.ackFloors(ctx)
	if err != nil {
		return 0, err
	}
	type stuck struct {
		msg  uint64
		dest string
	}
	var found []stuck
	// One destination at a time, by its index (destination, status):
	// only copies at or below its floor, so a long queue costs nothing.
	for dest, floor := range floors {
		if len(found) >= reconcileBatch {
			break
		}
		rows, err := o.Index.r.QueryContext(ctx, `SELECT message FROM dests
			WHERE destination = ? AND status IN ('queued', 'retrying') AND out_seq > 0 AND out_seq <= ? AND at < ? LIMIT ?`,
			dest, floor, time.Now().Add(-minAge).UnixNano(), reconcileBatch-len(found))
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			s := stuck{dest: dest}
			if err := rows.Scan(&s.msg); err != nil {
				rows.Close()
				return 0, err
			}
			found = append(found, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	now := time.Now()
	for _, s := range found {
		e := wire.Event{Kind: wire.EventDelivered, At: now, Message: s.msg, Destination: s.dest, Reason: ReconcileReason}
		var dlq uint64
		var reason string
		var attempts int
		err := o.Index.r.QueryRowContext(ctx, `SELECT id, reason, attempts FROM dlq WHERE message = ? AND destination = ? ORDER BY id DESC LIMIT 1`,
			s.msg, s.dest).Scan(&dlq, &reason, &attempts)
		switch {
		case err == nil:
			e.Kind, e.DLQ, e.Attempt, e.Reason = wire.EventDeadLettered, dlq, attempts, reason+" ("+ReconcileReason+")"
		case !errors.Is(err, sql.ErrNoRows):
			return 0, err
		}
		o.Events.Record(e)
	}
	return len(found), nil
}

// ackFloors is, for each destination, the HL7_OUT sequence up to which
// its queue has acknowledged every copy: the lowest floor of its
// consumers (one, or one a partition).
func (o *Ops) ackFloors(ctx context.Context) (map[string]uint64, error) {
	s, err := o.JetStream.Stream(ctx, wire.StreamOut)
	if err != nil {
		return nil, err
	}
	floors := map[string]uint64{}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		f := info.Config.FilterSubject
		rest, ok := strings.CutPrefix(f, wire.SubjectOut+".")
		if !ok || strings.ContainsAny(f, "*>") {
			continue
		}
		dest, _, _ := strings.Cut(rest, ".") // hl7.out.<dest>[.<partition>]
		if cur, seen := floors[dest]; !seen || info.AckFloor.Stream < cur {
			floors[dest] = info.AckFloor.Stream
		}
	}
	return floors, list.Err()
}
