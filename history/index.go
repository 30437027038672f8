package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	_ "modernc.org/sqlite" // pure Go SQLite: no cgo, one static binary
)

// Index is the search index: one SQLite file, written by one Indexer and
// read by any number of queries at once (WAL). Everything in it comes
// from the streams, so it is written without syncing: a crash loses at
// most the last writes, and the index resumes from the sequences it
// recorded with them.
type Index struct {
	path  string
	w     *sql.DB // the one writer
	r     *sql.DB // readers
	keys  map[string]string
	paths map[string]hl7.Path // keys, parsed
	fold  map[string]bool     // keys matched without case and accents
	// content: messages' words are indexed (history.content_search);
	// pruneTexts is the statement that prunes them ("" without).
	content    bool
	pruneTexts string

	// The writer's state between batches (one goroutine applies).
	held *batch    // messages waiting for the rest of their journey
	seen Positions // the last sequence read of each stream
	// covered: every message up to it has its head in the index; above:
	// messages after it whose heads came; gapSince: since when the one
	// after covered is missing; lastHead: the last message with a head.
	covered  uint64
	above    map[uint64]bool
	gapSince time.Time
	lastHead uint64
	wconn    *sql.Conn            // the writer's connection for batches
	stmts    map[string]*sql.Stmt // prepared on wconn
}

// schemaVersion changes whenever the tables do in a way an index made
// before cannot take; an index of another version (or other search keys)
// is rebuilt from the streams. A new table (refused) is made by the schema
// itself in an index made before, with nothing to fill in from before it.
const schemaVersion = "3"

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
	id INTEGER PRIMARY KEY,          -- HL7_IN sequence
	received_at INTEGER NOT NULL DEFAULT 0, -- unix nanoseconds
	listener TEXT NOT NULL DEFAULT '',
	sending_app TEXT NOT NULL DEFAULT '',
	sending_fac TEXT NOT NULL DEFAULT '',
	type TEXT NOT NULL DEFAULT '',
	event TEXT NOT NULL DEFAULT '',
	control_id TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	remote TEXT NOT NULL DEFAULT '',
	size INTEGER NOT NULL DEFAULT 0,
	replay_of TEXT NOT NULL DEFAULT '',
	routed INTEGER NOT NULL DEFAULT 0,
	unrouted INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL DEFAULT 'received',
	digest INTEGER NOT NULL DEFAULT 0 -- the start of the SHA-256 of its bytes as received (0: not known)
);
CREATE INDEX IF NOT EXISTS messages_control ON messages(control_id);
CREATE INDEX IF NOT EXISTS messages_time ON messages(received_at);
-- Every filter's index ends in the message id (SQLite appends it), so a
-- page of the newest matches is a walk down one index, however many
-- messages there are (see Search).
DROP INDEX IF EXISTS messages_type;   -- before 2026-12-07: (type, received_at)
DROP INDEX IF EXISTS messages_status; -- before 2026-12-07: (status, type, received_at)
CREATE INDEX IF NOT EXISTS messages_by_status ON messages(status);
CREATE INDEX IF NOT EXISTS messages_by_type ON messages(type);
CREATE INDEX IF NOT EXISTS messages_by_listener ON messages(listener);
CREATE INDEX IF NOT EXISTS messages_type_event ON messages(type, event);
CREATE INDEX IF NOT EXISTS messages_status_type ON messages(status, type);
CREATE INDEX IF NOT EXISTS messages_status_listener ON messages(status, listener);
CREATE INDEX IF NOT EXISTS messages_listener_type ON messages(listener, type);
CREATE TABLE IF NOT EXISTS keys (
	name TEXT NOT NULL, value TEXT NOT NULL, message INTEGER NOT NULL,
	shown TEXT NOT NULL DEFAULT '', -- a folded key's value as the message has it
	PRIMARY KEY (name, value, message)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_message ON keys(message);
CREATE TABLE IF NOT EXISTS dests (
	message INTEGER NOT NULL, destination TEXT NOT NULL,
	status TEXT NOT NULL, at INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0, code TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
	out_seq INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (message, destination)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dests_dest ON dests(destination, status, message);
CREATE INDEX IF NOT EXISTS dests_dest_message ON dests(destination, message);
CREATE TABLE IF NOT EXISTS sent ( -- what the latest attempt of a copy sent and got back (content)
	message INTEGER NOT NULL, destination TEXT NOT NULL,
	at INTEGER NOT NULL, attempt INTEGER NOT NULL,
	payload BLOB, name TEXT NOT NULL, size INTEGER NOT NULL, response BLOB,
	sha256 BLOB, -- of what the destination received, when delivered
	PRIMARY KEY (message, destination)
) WITHOUT ROWID; -- one b-tree: most rows are an ACK (a larger payload overflows to its own pages)
CREATE TABLE IF NOT EXISTS journeys (
	message INTEGER PRIMARY KEY,     -- HL7_IN sequence
	body BLOB NOT NULL               -- its events, one JSON object a line, in the order they came
);
CREATE TABLE IF NOT EXISTS dlq (
	id INTEGER PRIMARY KEY,          -- HL7_DLQ sequence
	message INTEGER NOT NULL, control_id TEXT NOT NULL, type TEXT NOT NULL, event TEXT NOT NULL,
	destination TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL, at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dlq_destination ON dlq(destination, id);
CREATE TABLE IF NOT EXISTS audit (
	seq INTEGER PRIMARY KEY,         -- HL7_AUDIT sequence
	at INTEGER NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL,
	ids TEXT NOT NULL, detail TEXT NOT NULL, remote TEXT NOT NULL,
	keys TEXT NOT NULL DEFAULT '' -- its messages' search-key values, JSON
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(at);
CREATE TABLE IF NOT EXISTS audit_keys ( -- an audit entry's messages' search-key values (folded where the key folds)
	name TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL,
	PRIMARY KEY (name, value, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_keys_seq ON audit_keys(seq);
CREATE TABLE IF NOT EXISTS refused (
	seq INTEGER NOT NULL, line INTEGER NOT NULL, -- where its event is in HL7_EVENTS
	at INTEGER NOT NULL, listener TEXT NOT NULL, remote TEXT NOT NULL, ack TEXT NOT NULL,
	code TEXT NOT NULL, reason TEXT NOT NULL, type TEXT NOT NULL, event TEXT NOT NULL,
	control_id TEXT NOT NULL, sending_app TEXT NOT NULL, sending_fac TEXT NOT NULL, size INTEGER NOT NULL,
	PRIMARY KEY (seq, line)
);
CREATE INDEX IF NOT EXISTS refused_time ON refused(at);
CREATE INDEX IF NOT EXISTS refused_control ON refused(control_id);
`

// OpenIndex opens (or creates) the index at path for the given search
// keys (name -> HL7 path). An index made by another version or for other
// keys is deleted and rebuilt: Rebuilt reports it.
//
// Keys named in fold are matched without case or accents (their values
// are indexed folded, hl7.FoldKey).
func OpenIndex(path string, searchKeys map[string]string, fold ...string) (*Index, error) {
	return Open(path, searchKeys, IndexOptions{Fold: fold})
}

// IndexOptions are how an index is made beyond its search keys.
type IndexOptions struct {
	Fold []string // keys matched without case or accents
	// Content indexes every message's words for Filter.Text
	// (history.content_search); turned on or off, the index is rebuilt.
	Content bool
}

// Open is OpenIndex with options.
func Open(path string, searchKeys map[string]string, o IndexOptions) (*Index, error) {
	paths, err := hl7.SearchKeyPaths(searchKeys)
	if err != nil {
		return nil, fmt.Errorf("history index: %w", err)
	}
	ix := &Index{path: path, keys: searchKeys, paths: paths, fold: map[string]bool{}, content: o.Content}
	for _, name := range o.Fold {
		ix.fold[name] = true
	}
	if ix.content {
		ix.pruneTexts = `DELETE FROM texts WHERE rowid IN (SELECT rowid FROM texts WHERE rowid < ? LIMIT 10000)`
	}
	if err := ix.open(); err != nil {
		return nil, err
	}
	want := ix.signature()
	if got, _ := ix.meta(context.Background(), "signature"); got != want {
		if got != "" { // made for other keys or by another version
			ix.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
					return nil, fmt.Errorf("history index: %w", err)
				}
			}
			if err := ix.open(); err != nil {
				return nil, err
			}
		}
		if _, err := ix.w.Exec(`INSERT OR REPLACE INTO meta(k, v) VALUES ('signature', ?)`, want); err != nil {
			ix.Close()
			return nil, fmt.Errorf("history index: %w", err)
		}
	}
	return ix, nil
}

func (ix *Index) open() error {
	dsn := "file:" + ix.path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=busy_timeout(10000)&_pragma=temp_store(MEMORY)"
	var err error
	if ix.w, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	// Two: batches keep one (Index.writer); pruning, resets and reading
	// positions use the other, from the same goroutine as the batches.
	ix.w.SetMaxOpenConns(2)
	if _, err := ix.w.Exec(schema); err != nil {
		ix.w.Close()
		return fmt.Errorf("history index %s: %w", ix.path, err)
	}
	if ix.content {
		if _, err := ix.w.Exec(textsSchema); err != nil {
			ix.w.Close()
			return fmt.Errorf("history index %s: content search: %w", ix.path, err)
		}
	}
	if err := ix.addColumns(); err != nil {
		ix.w.Close()
		return fmt.Errorf("history index %s: %w", ix.path, err)
	}
	if err := ix.openTotals(); err != nil {
		ix.w.Close()
		return fmt.Errorf("history index %s: totals: %w", ix.path, err)
	}
	if ix.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		ix.w.Close()
		return fmt.Errorf("history index: %w", err)
	}
	ix.r.SetMaxOpenConns(4)
	return nil
}

// KeyPaths are the search keys the index was opened for, parsed: what
// ingest puts in each received event.
func (ix *Index) KeyPaths() map[string]hl7.Path { return ix.paths }

// signature names the schema and the search keys the index was made for.
func (ix *Index) signature() string {
	var b strings.Builder
	b.WriteString("v" + schemaVersion)
	for _, k := range slices.Sorted(maps.Keys(ix.keys)) {
		b.WriteString(";" + k + "=" + ix.keys[k])
		if ix.fold[k] {
			b.WriteString(" folded")
		}
	}
	if ix.content {
		b.WriteString(";content")
	}
	return b.String()
}

// Close closes the file.
func (ix *Index) Close() error {
	var errs []error
	for _, st := range ix.stmts {
		errs = append(errs, st.Close())
	}
	ix.stmts = nil
	if ix.wconn != nil {
		errs = append(errs, ix.wconn.Close())
		ix.wconn = nil
	}
	if ix.r != nil {
		errs = append(errs, ix.r.Close())
	}
	if ix.w != nil {
		errs = append(errs, ix.w.Close())
	}
	return errors.Join(errs...)
}

func (ix *Index) meta(ctx context.Context, k string) (string, error) {
	var v string
	err := ix.w.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Positions are the last stream sequences the index has applied.
type Positions map[string]uint64

// Positions reads where the index stands in each stream.
func (ix *Index) Positions(ctx context.Context) (Positions, error) {
	v, err := ix.meta(ctx, "positions")
	if err != nil || v == "" {
		return Positions{}, err
	}
	p := Positions{}
	return p, json.Unmarshal([]byte(v), &p)
}

// Reset empties the index; the Indexer then reads every stream again.
func (ix *Index) Reset(ctx context.Context) error {
	tables := []string{"messages", "keys", "dests", "sent", "journeys", "dlq", "audit", "audit_keys", "totals"}
	if ix.content {
		tables = append(tables, "texts")
	}
	for _, t := range tables {
		if _, err := ix.w.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("history index: %w", err)
		}
	}
	ix.forget()
	// The streams are read again: totals count again from what they keep
	// (and from the refused messages, which stay).
	if _, err := ix.w.ExecContext(ctx, `DELETE FROM meta WHERE k = 'totals'`+";"+seedTotals); err != nil {
		return fmt.Errorf("history index: %w", err)
	}
	_, err := ix.w.ExecContext(ctx, `DELETE FROM meta WHERE k = 'positions'`)
	return err
}

// addColumns gives the tables of an index made before the columns added
// since: keys.shown and audit.keys (2026-12-07), messages.digest and
// sent.sha256 (2026-12-08; a message indexed before has no digest until
// the index is rebuilt, and a reconciliation does not find it).
func (ix *Index) addColumns() error {
	for _, c := range []struct{ table, column, decl string }{{"keys", "shown", "TEXT NOT NULL DEFAULT ''"}, {"audit", "keys", "TEXT NOT NULL DEFAULT ''"},
		{"messages", "digest", "INTEGER NOT NULL DEFAULT 0"}, {"sent", "sha256", "BLOB"}} {
		var n int
		if err := ix.w.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := ix.w.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.decl); err != nil {
				return err
			}
		}
	}
	return nil
}
