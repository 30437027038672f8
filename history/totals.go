package history

import (
	"context"
	"fmt"
)

// Totals: counts a person reads as totals (the console's and `hl7broker
// status`'s received, refused, delivered, failed attempts and dead
// letters), kept in the index so that they go on across restarts instead
// of starting at 0 with the process.
//
// They are counted by SQLite triggers on the index's own rows, not on
// events: a message counts as received when its row first gets a
// listener, a copy as delivered or dead-lettered when its status moves
// there, a failed attempt when a copy's attempts grow. The Indexer may
// apply records and events twice (after a crash it reads the streams again
// from its last positions); a row written twice does not move again, so
// nothing is counted twice. A copy replayed and delivered counts as
// delivered again: it was. Totals start when the index is made (seeded
// from the rows an older index already holds); an index rebuilt from the
// streams counts what they still keep.
const totalsSchema = `
CREATE TABLE IF NOT EXISTS totals (
	kind TEXT NOT NULL, name TEXT NOT NULL,  -- kind: 'origin' (a listener or source) or 'destination'
	received INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0,
	delivered INTEGER NOT NULL DEFAULT 0, dead_lettered INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS totals_received AFTER INSERT ON messages WHEN NEW.listener != '' BEGIN
	INSERT INTO totals(kind, name, received) VALUES ('origin', NEW.listener, 1) ON CONFLICT DO UPDATE SET received = received + 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_received_late AFTER UPDATE OF listener ON messages WHEN OLD.listener = '' AND NEW.listener != '' BEGIN
	INSERT INTO totals(kind, name, received) VALUES ('origin', NEW.listener, 1) ON CONFLICT DO UPDATE SET received = received + 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_copy AFTER INSERT ON dests WHEN NEW.status IN ('delivered', 'dead_lettered') OR NEW.attempts > 0 BEGIN
	INSERT INTO totals(kind, name, delivered, dead_lettered, failed)
		VALUES ('destination', NEW.destination, NEW.status = 'delivered', NEW.status = 'dead_lettered', max(NEW.attempts - (NEW.status = 'delivered'), 0))
		ON CONFLICT DO UPDATE SET delivered = delivered + excluded.delivered, dead_lettered = dead_lettered + excluded.dead_lettered,
			failed = failed + excluded.failed;
END;
CREATE TRIGGER IF NOT EXISTS totals_copy_moved AFTER UPDATE OF status, attempts ON dests
	WHEN (OLD.status != NEW.status AND NEW.status IN ('delivered', 'dead_lettered'))
		OR NEW.attempts - (NEW.status = 'delivered') > OLD.attempts - (OLD.status = 'delivered') BEGIN
	INSERT INTO totals(kind, name, delivered, dead_lettered, failed)
		VALUES ('destination', NEW.destination, OLD.status != NEW.status AND NEW.status = 'delivered',
			OLD.status != NEW.status AND NEW.status = 'dead_lettered',
			max((NEW.attempts - (NEW.status = 'delivered')) - (OLD.attempts - (OLD.status = 'delivered')), 0))
		ON CONFLICT DO UPDATE SET delivered = delivered + excluded.delivered, dead_lettered = dead_lettered + excluded.dead_lettered,
			failed = failed + excluded.failed;
END;
CREATE TRIGGER IF NOT EXISTS totals_refused AFTER INSERT ON refused BEGIN
	INSERT INTO totals(kind, name, refused) VALUES ('origin', NEW.listener, 1) ON CONFLICT DO UPDATE SET refused = refused + 1;
END;
`

// seedTotals counts, once, what an index made before totals existed
// already holds; in a new index it finds nothing.
const seedTotals = `
INSERT INTO totals(kind, name, received) SELECT 'origin', listener, count(*) FROM messages WHERE listener != '' GROUP BY listener;
INSERT INTO totals(kind, name, refused) SELECT 'origin', listener, count(*) FROM refused GROUP BY listener
	ON CONFLICT DO UPDATE SET refused = excluded.refused;
INSERT INTO totals(kind, name, delivered, dead_lettered, failed)
	SELECT 'destination', destination, sum(status = 'delivered'), sum(status = 'dead_lettered'), sum(max(attempts - (status = 'delivered'), 0))
	FROM dests GROUP BY destination;
INSERT OR REPLACE INTO meta(k, v) VALUES ('totals', 'seeded');
`

// openTotals makes the totals table and its triggers, seeding it the
// first time.
func (ix *Index) openTotals() error {
	seeded, err := ix.meta(context.Background(), "totals")
	if err != nil {
		return err
	}
	if _, err := ix.w.Exec(totalsSchema); err != nil {
		return err
	}
	if seeded == "" {
		if _, err := ix.w.Exec("BEGIN; DELETE FROM totals;" + seedTotals + "COMMIT;"); err != nil {
			_, _ = ix.w.Exec("ROLLBACK")
			return err
		}
	}
	return nil
}

// Totals is what the index has counted, by kind (received and refused by
// listener or source; delivered, failed and dead_lettered by
// destination), then name.
type Totals map[string]map[string]uint64

// Get is one count (0 when none).
func (t Totals) Get(what, name string) uint64 { return t[what][name] }

// Totals reads the counts.
func (ix *Index) Totals(ctx context.Context) (Totals, error) {
	rows, err := ix.r.QueryContext(ctx, `SELECT name, received, refused, delivered, dead_lettered, failed FROM totals`)
	if err != nil {
		return nil, fmt.Errorf("history index: %w", err)
	}
	defer rows.Close()
	t := Totals{}
	for rows.Next() {
		var name string
		var n [5]int64
		if err := rows.Scan(&name, &n[0], &n[1], &n[2], &n[3], &n[4]); err != nil {
			return nil, fmt.Errorf("history index: %w", err)
		}
		for i, what := range []string{"received", "refused", "delivered", "dead_lettered", "failed"} {
			if n[i] > 0 {
				if t[what] == nil {
					t[what] = map[string]uint64{}
				}
				t[what][name] = uint64(n[i])
			}
		}
	}
	return t, rows.Err()
}
