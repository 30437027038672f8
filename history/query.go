package history

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/wire"
)

// Filter selects messages; empty fields select all. Keys are search keys
// by name (history.search_keys).
type Filter struct {
	ControlID   string
	Keys        map[string]string
	Type        string
	Event       string
	Listener    string
	Status      string // a message's status, or with Destination that destination's copy's
	Destination string // messages with a copy for this destination
	// Listeners, when set, keeps messages received on one of them (a
	// token limited to some listeners and sources).
	Listeners []string
	From, To  time.Time
	// Text, with history.content_search, keeps messages holding every
	// word of it (a word ending in * a prefix, "a phrase" in quotes), in
	// any field, without regard to case or accents.
	Text   string
	Limit  int    // default 50, at most 1000
	Cursor string // next_cursor of the previous page (the last id it showed)
}

// Summary is a message in a page of results: names and codes, no content.
type Summary struct {
	ID          string    `json:"id"`
	ControlID   string    `json:"control_id"`
	Type        string    `json:"type"`
	Event       string    `json:"event"`
	ReceivedAt  time.Time `json:"received_at"`
	Status      string    `json:"status"`
	Listener    string    `json:"listener"`
	SendingApp  string    `json:"sending_application"`
	SendingFac  string    `json:"sending_facility"`
	Version     string    `json:"version,omitempty"`
	RemoteAddr  string    `json:"remote_addr,omitempty"`
	Size        int       `json:"size"`
	ReplayOf    string    `json:"replay_of,omitempty"`
	Destination *Copy     `json:"destination,omitempty"` // with Filter.Destination: that copy
	// Keys are its search keys' values (the first of each), by name: the
	// MRN, the name… of the person the message is about. In Search's
	// results only.
	Keys map[string]string `json:"keys,omitempty"`
	// LastError is why a copy's last attempt failed, if one's did (in
	// Search's results).
	LastError string `json:"last_error,omitempty"`
}

// Page is one page of summaries, newest first; NextCursor is "" on the last.
type Page struct {
	Items      []Summary `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// Copy is where a message's copy for one destination stands.
type Copy struct {
	Destination string    `json:"destination"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	Code        string    `json:"code,omitempty"`   // the downstream's last answer
	Reason      string    `json:"reason,omitempty"` // why the last attempt failed
	At          time.Time `json:"at"`
	OutSeq      uint64    `json:"-"`
	Changed     bool      `json:"changed"` // a transform changed it
}

// sentRow is what the latest attempt of a copy sent and got back.
type sentRow struct {
	payload, response []byte
	name              string
	size              int
}

// sent is what the latest attempt of each of message id's copies sent
// and got back, by destination.
func (ix *Index) sent(ctx context.Context, id uint64) (map[string]sentRow, error) {
	rows, err := ix.r.QueryContext(ctx, `SELECT destination, payload, name, size, response FROM sent WHERE message = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]sentRow{}
	for rows.Next() {
		var dest string
		var r sentRow
		if err := rows.Scan(&dest, &r.payload, &r.name, &r.size, &r.response); err != nil {
			return nil, err
		}
		out[dest] = r
	}
	return out, rows.Err()
}

// ErrBadCursor: a cursor this index did not make.
var ErrBadCursor = errors.New("bad cursor")

// ErrNotFound: no such message (or dead letter) in the index.
var ErrNotFound = errors.New("not found")

const summaryCols = `id, control_id, type, event, received_at, status, listener, sending_app, sending_fac, version, remote, size, replay_of`

func scanSummary(sc interface{ Scan(...any) error }, extra ...any) (Summary, error) {
	var s Summary
	var id, at int64
	err := sc.Scan(append([]any{&id, &s.ControlID, &s.Type, &s.Event, &at, &s.Status, &s.Listener, &s.SendingApp, &s.SendingFac,
		&s.Version, &s.RemoteAddr, &s.Size, &s.ReplayOf}, extra...)...)
	s.ID, s.ReceivedAt = strconv.FormatInt(id, 10), time.Unix(0, at).UTC()
	return s, err
}

func limit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, 1000)
}

// Search returns a page of messages matching f, newest first.
func (ix *Index) Search(ctx context.Context, f Filter) (Page, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	add("m.received_at > 0") // indexed from HL7_IN, not only from its events
	if f.ControlID != "" {
		add("m.control_id = ?", f.ControlID)
	}
	// The table the query walks, newest first, decides its speed: a
	// search key's index (a few messages), else a destination's copies,
	// else the messages by whichever index SQLite finds for the rest.
	// CROSS JOIN keeps that order (SQLite does not reorder it).
	from, idCol := "messages m", "m.id"
	cols := "m." + strings.ReplaceAll(summaryCols, ", ", ", m.")
	keys, err := ix.searchKeys(ctx, f.Keys)
	if err != nil {
		return Page{}, err
	}
	// A search key leads when it is the narrowest thing asked for, or the
	// only thing: its index gives its messages newest first. A key that
	// many messages share (a common name) beside another filter is only
	// checked, message by message, while that filter's index leads.
	others := f.ControlID != "" || f.Type != "" || f.Event != "" || f.Listener != "" || f.Status != "" || f.Destination != "" ||
		!f.From.IsZero() || !f.To.IsZero() || f.Text != ""
	lead := len(keys) > 0 && (keys[0].count < manyKeyed || !others)
	// Words lead unless a search key does: FTS5 yields their messages
	// newest first (ORDER BY rowid DESC), the rest is checked message by
	// message.
	text := ""
	if f.Text != "" {
		if !ix.content {
			return Page{}, ErrNoContentSearch
		}
		if text, err = ftsQuery(f.Text); err != nil {
			return Page{}, err
		}
	}
	textLeads := text != "" && !lead
	leadAt, leadValues := -1, []string(nil) // the leading prefix's condition in where, and the values it stands for
	for i, k := range keys {
		t := fmt.Sprintf("k%d", i)
		cond, cargs := t+".name = ? AND "+t+".value = ?", []any{k.name, k.value}
		if k.prefix { // every value that starts so: no valid UTF-8 has the byte 0xFF
			cond, cargs = t+".name = ? AND "+t+".value >= ? AND "+t+".value < ?", []any{k.name, k.value, k.value + "\xff"}
		}
		switch {
		case i == 0 && lead:
			from, idCol = "keys k0 CROSS JOIN messages m", "k0.message"
			add("m.id = k0.message")
			if k.prefix && k.values != nil {
				leadAt, leadValues = len(where), k.values
			}
			add(cond, cargs...)
		case lead:
			from += " CROSS JOIN keys " + t
			add(t+".message = k0.message AND "+cond, cargs...)
		default:
			add("EXISTS (SELECT 1 FROM keys "+t+" WHERE "+t+".message = m.id AND "+cond+")", cargs...)
		}
	}
	switch {
	case lead:
		if text != "" { // checked for each of the key's few messages, not listed whole
			add("EXISTS (SELECT 1 FROM texts WHERE texts MATCH ? AND rowid = m.id)", text)
		}
	case textLeads:
		from, idCol = "texts t CROSS JOIN messages m", "t.rowid"
		add("t.texts MATCH ?", text)
		add("m.id = t.rowid")
	case f.Destination != "":
		from, idCol = "dests d CROSS JOIN messages m", "d.message"
		add("m.id = d.message")
	}
	for col, v := range map[string]string{"m.type": f.Type, "m.event": f.Event, "m.listener": f.Listener} {
		if v != "" {
			add(col+" = ?", v)
		}
	}
	if f.Listeners != nil {
		in, a := inStrings(f.Listeners)
		add("m.listener IN "+in, a...)
	}
	if f.Destination != "" {
		if lead || textLeads {
			from += " CROSS JOIN dests d"
			add("d.message = " + idCol)
		}
		add("d.destination = ?", f.Destination)
		cols += ", d.status, d.attempts, d.code, d.reason, d.at, d.changed"
		if f.Status != "" {
			add("d.status = ?", f.Status)
		}
	} else if f.Status != "" {
		add("m.status = ?", f.Status)
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		// Results are in the order the store took the messages (their
		// ids), which every index below yields for free; a time range
		// becomes a range of ids first (see idRange), then is checked
		// exactly.
		lo, hi, err := ix.idRange(ctx, f.From, f.To)
		if err != nil {
			return Page{}, err
		}
		add(idCol+" BETWEEN ? AND ?", lo, hi)
		if !f.From.IsZero() {
			add("m.received_at >= ?", f.From.UnixNano())
		}
		if !f.To.IsZero() {
			add("m.received_at < ?", f.To.UnixNano())
		}
	}
	if f.Cursor != "" {
		id, err := strconv.ParseUint(f.Cursor, 10, 63)
		if err != nil {
			return Page{}, ErrBadCursor
		}
		add(idCol+" < ?", id)
	}
	n := limit(f.Limit)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s DESC LIMIT %d", cols, from, strings.Join(where, " AND "), idCol, n+1)
	if leadAt >= 0 {
		q, args = unionOfValues(cols, from, where, args, leadAt, leadValues, idCol, n+1)
	}
	rows, err := ix.r.QueryContext(ctx, q, args...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	page := Page{Items: []Summary{}}
	for rows.Next() {
		var s Summary
		var err error
		if f.Destination != "" {
			c := &Copy{Destination: f.Destination}
			var at int64
			s, err = scanSummary(rows, &c.Status, &c.Attempts, &c.Code, &c.Reason, &at, &c.Changed)
			c.At, s.Destination = time.Unix(0, at).UTC(), c
		} else {
			s, err = scanSummary(rows)
		}
		if err != nil {
			return Page{}, err
		}
		page.Items = append(page.Items, s)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(page.Items) > n {
		page.Items = page.Items[:n]
		last := page.Items[n-1]
		page.NextCursor = last.ID
	}
	return page, ix.pageExtras(ctx, page.Items)
}

// manyKeyed is how many messages sharing one key value (a common
// name) make it too broad to lead a search with other filters.
const manyKeyed = 5000

// searchKey is one key of a search, as the index holds it.
type searchKey struct {
	name, value string
	prefix      bool
	values      []string // a prefix's values, when few enough to walk one by one
	count       int      // messages with it, counted up to manyKeyed
}

// searchKeys are the search's keys, folded where their key folds, each
// with how many messages have it, the narrowest first.
func (ix *Index) searchKeys(ctx context.Context, asked map[string]string) ([]searchKey, error) {
	var out []searchKey
	for _, name := range slices.Sorted(maps.Keys(asked)) {
		k := searchKey{name: name, value: asked[name]}
		k.prefix = strings.HasSuffix(k.value, "*")
		k.value = strings.TrimSuffix(k.value, "*")
		if ix.fold[name] {
			k.value = hl7.FoldKey(k.value)
		}
		var err error
		if k.prefix {
			if k.values, err = ix.valuesFrom(ctx, name, k.value); err != nil {
				return nil, err
			}
		}
		counted := []string{k.value}
		if k.prefix {
			counted = k.values
		}
		if k.prefix && k.values == nil {
			k.count = manyKeyed // too many values to count: treat as broad
		}
		for _, v := range counted {
			var n int
			if err := ix.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM keys WHERE name = ? AND value = ? LIMIT ?)`,
				name, v, manyKeyed).Scan(&n); err != nil {
				return nil, err
			}
			if k.count += n; k.count >= manyKeyed {
				break
			}
		}
		out = append(out, k)
	}
	slices.SortStableFunc(out, func(a, b searchKey) int { return cmp.Compare(a.count, b.count) })
	return out, nil
}

// maxAuditKeys bounds the values of each key an audit entry carries (a
// search's page of 50 messages, a bulk replay).
const maxAuditKeys = 100

// KeysOf are the search-key values (as the messages have them) of the
// given messages and of the messages of the given dead letters: what an
// audit entry about them carries. At most maxAuditKeys values a key.
func (ix *Index) KeysOf(ctx context.Context, messages, letters []uint64) (map[string][]string, error) {
	ids := slices.Clone(messages)
	if len(letters) > 0 {
		in, args := inList(letters)
		rows, err := ix.r.QueryContext(ctx, `SELECT message FROM dlq WHERE id IN `+in, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uint64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
	}
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := inList(ids)
	rows, err := ix.r.QueryContext(ctx, `SELECT DISTINCT name, CASE WHEN shown != '' THEN shown ELSE value END FROM keys WHERE message IN `+in+` ORDER BY 1, 2`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out map[string][]string
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string][]string{}
		}
		if len(v) > wire.AuditMaxID {
			v = strings.ToValidUTF8(v[:wire.AuditMaxID], "")
		}
		if len(out[name]) < maxAuditKeys && !slices.Contains(out[name], v) {
			out[name] = append(out[name], v)
		}
	}
	return out, rows.Err()
}

// inStrings is "(?, ?, …)" for names, and the names as arguments; "(”)"
// for none, which matches nothing that has a name.
func inStrings(names []string) (string, []any) {
	if len(names) == 0 {
		return "('')", nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return "(?" + strings.Repeat(", ?", len(names)-1) + ")", args
}

// inList is "(?, ?, …)" for ids, and ids as arguments.
func inList(ids []uint64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = int64(id)
	}
	return "(?" + strings.Repeat(", ?", len(ids)-1) + ")", args
}

// maxPrefixValues is how many values a prefix search walks one by one,
// newest first each; a prefix with more (a single letter, say) sorts its
// matches instead, which is slower on a large index.
const maxPrefixValues = 64

// valuesFrom is key name's values that start with prefix, found by
// stepping from one to the next in the key's index (two lookups a
// value, however many messages each has); nil when there are more than
// maxPrefixValues.
func (ix *Index) valuesFrom(ctx context.Context, name, prefix string) ([]string, error) {
	var out []string
	at := prefix
	op := ">="
	for len(out) <= maxPrefixValues {
		var v sql.NullString
		err := ix.r.QueryRowContext(ctx, `SELECT min(value) FROM keys WHERE name = ? AND value `+op+` ? AND value < ?`, name, at, prefix+"\xff").Scan(&v)
		if err != nil {
			return nil, err
		}
		if !v.Valid {
			return out, nil
		}
		out, at, op = append(out, v.String), v.String, ">"
	}
	return nil, nil
}

// unionOfValues is the query of where with its condition at leadAt (the
// leading key's prefix range, "k0.name = ? AND k0.value >= ? AND
// k0.value < ?") made one value, once for each of values: each arm walks
// one value's messages newest first and stops at limit, and the arms'
// newest are the page.
func unionOfValues(cols, from string, where []string, args []any, leadAt int, values []string, idCol string, limit int) (string, []any) {
	before := 0 // the range's three arguments (name, from, to) follow those of the conditions before it
	for _, w := range where[:leadAt] {
		before += strings.Count(w, "?")
	}
	name := args[before]
	w := slices.Clone(where)
	w[leadAt] = "k0.name = ? AND k0.value = ?"
	arm := fmt.Sprintf("SELECT * FROM (SELECT %s FROM %s WHERE %s ORDER BY %s DESC LIMIT %d)", cols, from, strings.Join(w, " AND "), idCol, limit)
	var all []any
	for _, v := range values {
		all = append(append(append(all, args[:before]...), name, v), args[before+3:]...)
	}
	return strings.Repeat(arm+" UNION ALL ", len(values)-1) + arm + fmt.Sprintf(" ORDER BY 1 DESC LIMIT %d", limit), all
}

// pageExtras adds each summary's key values and last error: one lookup
// each for the page, by message id.
func (ix *Index) pageExtras(ctx context.Context, items []Summary) error {
	if len(items) == 0 {
		return nil
	}
	at := map[int64]int{}
	ids := make([]any, len(items))
	for i, s := range items {
		id, _ := strconv.ParseInt(s.ID, 10, 64)
		at[id], ids[i] = i, id
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := ix.r.QueryContext(ctx, `SELECT message, name, CASE WHEN shown != '' THEN shown ELSE value END FROM keys WHERE message IN `+in+
		` ORDER BY message, name, value`, ids...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var name, v string
		if err := rows.Scan(&id, &name, &v); err != nil {
			rows.Close()
			return err
		}
		s := &items[at[id]]
		if s.Keys == nil {
			s.Keys = map[string]string{}
		}
		if _, have := s.Keys[name]; !have {
			s.Keys[name] = v
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = ix.r.QueryContext(ctx, `SELECT message, reason FROM dests WHERE message IN `+in+` AND reason != '' AND status IN ('retrying', 'dead_lettered')
		ORDER BY at`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var reason string
		if err := rows.Scan(&id, &reason); err != nil {
			return err
		}
		items[at[id]].LastError = reason
	}
	return rows.Err()
}

// clockSkew is how far apart a cluster's brokers' clocks may be: a
// message stored after another may say it was received up to this much
// earlier, and time ranges still find it.
const clockSkew = time.Minute

// idRange is the ids of messages received in [from, to), widened by
// clockSkew: ids follow the order the store took messages in, and
// received times follow it but for the brokers' clocks. Two lookups in
// the time index, however many messages the range holds.
func (ix *Index) idRange(ctx context.Context, from, to time.Time) (lo, hi int64, err error) {
	lo, hi = 0, math.MaxInt64
	if !from.IsZero() {
		err = ix.r.QueryRowContext(ctx, `SELECT coalesce((SELECT id FROM messages WHERE received_at >= ? ORDER BY received_at LIMIT 1), ?)`,
			from.Add(-clockSkew).UnixNano(), math.MaxInt64).Scan(&lo)
	}
	if err == nil && !to.IsZero() {
		err = ix.r.QueryRowContext(ctx, `SELECT coalesce((SELECT id FROM messages WHERE received_at > 0 AND received_at < ? ORDER BY received_at DESC LIMIT 1), 0)`,
			to.Add(clockSkew).UnixNano()).Scan(&hi)
	}
	return lo, hi, err
}

// Detail is what the index knows of one message: its summary, its
// copies, and its journey (the events, oldest first).
type Detail struct {
	Summary
	Copies  []Copy            `json:"destinations"`
	Journey []json.RawMessage `json:"journey"`
}

// Message returns message id's summary, copies and journey.
func (ix *Index) Message(ctx context.Context, id uint64) (Detail, error) {
	var d Detail
	var err error
	d.Summary, err = scanSummary(ix.r.QueryRowContext(ctx, "SELECT "+summaryCols+" FROM messages WHERE id = ? AND received_at > 0", id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	} else if err != nil {
		return d, err
	}
	rows, err := ix.r.QueryContext(ctx, `SELECT destination, status, attempts, code, reason, at, out_seq, changed FROM dests WHERE message = ? ORDER BY destination`, id)
	if err != nil {
		return d, err
	}
	d.Copies = []Copy{}
	for rows.Next() {
		var c Copy
		var at int64
		if err := rows.Scan(&c.Destination, &c.Status, &c.Attempts, &c.Code, &c.Reason, &at, &c.OutSeq, &c.Changed); err != nil {
			rows.Close()
			return d, err
		}
		c.At = time.Unix(0, at).UTC()
		d.Copies = append(d.Copies, c)
	}
	rows.Close()
	var body []byte
	err = ix.r.QueryRowContext(ctx, `SELECT body FROM journeys WHERE message = ?`, id).Scan(&body)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return d, err
	}
	d.Journey = journey(body)
	return d, nil
}

// journey splits a journey's lines into events, oldest first (a
// cluster's brokers may have stored them out of order), each once (a
// record indexed again after a crash repeats its lines).
func journey(body []byte) []json.RawMessage {
	type line struct {
		at  time.Time
		raw json.RawMessage
	}
	var lines []line
	seen := map[string]bool{}
	for l := range bytes.SplitSeq(bytes.TrimSpace(body), []byte("\n")) {
		if seen[string(l)] {
			continue
		}
		seen[string(l)] = true
		var e wire.Event
		if wire.ParseEvent(l, &e) == nil {
			lines = append(lines, line{e.At, json.RawMessage(l)})
		}
	}
	slices.SortStableFunc(lines, func(x, y line) int { return x.at.Compare(y.at) })
	out := make([]json.RawMessage, len(lines))
	for i, l := range lines {
		out[i] = l.raw
	}
	return out
}

// DeadLetter is one message in HL7_DLQ.
type DeadLetter struct {
	ID          string    `json:"id"`         // its HL7_DLQ sequence
	MessageID   string    `json:"message_id"` // its input's HL7_IN sequence
	ControlID   string    `json:"control_id"`
	Type        string    `json:"type"`
	Event       string    `json:"event"`
	Destination string    `json:"destination"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	At          time.Time `json:"at"`
}

// DLQFilter selects dead letters.
type DLQFilter struct {
	Destination string
	// Destinations and Listeners, when set, keep the letters of those
	// destinations and of messages received on those listeners (a token
	// limited to them).
	Destinations, Listeners []string
	Limit                   int
	Cursor                  string // an id: letters older than it
}

// DLQPage is one page of dead letters, newest first.
type DLQPage struct {
	Items      []DeadLetter `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

const dlqCols = `id, message, control_id, type, event, destination, reason, attempts, at`

func scanDeadLetter(sc interface{ Scan(...any) error }) (DeadLetter, error) {
	var d DeadLetter
	var id, msg, at int64
	err := sc.Scan(&id, &msg, &d.ControlID, &d.Type, &d.Event, &d.Destination, &d.Reason, &d.Attempts, &at)
	d.ID, d.MessageID, d.At = strconv.FormatInt(id, 10), strconv.FormatInt(msg, 10), time.Unix(0, at).UTC()
	return d, err
}

// DeadLetters returns a page of dead letters.
func (ix *Index) DeadLetters(ctx context.Context, f DLQFilter) (DLQPage, error) {
	where, args := []string{"1"}, []any{}
	if f.Destination != "" {
		where, args = append(where, "destination = ?"), append(args, f.Destination)
	}
	if f.Destinations != nil {
		in, a := inStrings(f.Destinations)
		where, args = append(where, "destination IN "+in), append(args, a...)
	}
	if f.Listeners != nil {
		in, a := inStrings(f.Listeners)
		where, args = append(where, "EXISTS (SELECT 1 FROM messages WHERE id = dlq.message AND listener IN "+in+")"), append(args, a...)
	}
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil {
			return DLQPage{}, ErrBadCursor
		}
		where, args = append(where, "id < ?"), append(args, c)
	}
	n := limit(f.Limit)
	rows, err := ix.r.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM dlq WHERE %s ORDER BY id DESC LIMIT %d", dlqCols, strings.Join(where, " AND "), n+1), args...)
	if err != nil {
		return DLQPage{}, err
	}
	defer rows.Close()
	p := DLQPage{Items: []DeadLetter{}}
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return p, err
		}
		p.Items = append(p.Items, d)
	}
	if len(p.Items) > n {
		p.Items = p.Items[:n]
		p.NextCursor = p.Items[n-1].ID
	}
	return p, rows.Err()
}

// DeadLetterByID returns one dead letter.
func (ix *Index) DeadLetterByID(ctx context.Context, id uint64) (DeadLetter, error) {
	d, err := scanDeadLetter(ix.r.QueryRowContext(ctx, "SELECT "+dlqCols+" FROM dlq WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	return d, err
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	From, To     time.Time
	User, Action string
	// Keys are search keys' values (key.mrn=…): the entries about
	// messages that carry them. A folding key matches as in Search.
	Keys   map[string]string
	Limit  int
	Cursor string
}

// AuditItem is one audit entry as listed.
type AuditItem struct {
	Seq    string    `json:"seq"`
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Action string    `json:"action"`
	Result string    `json:"result"`
	IDs    []string  `json:"ids"`
	Detail string    `json:"detail,omitempty"`
	Remote string    `json:"remote,omitempty"`
	// Keys are the search-key values of the messages it showed or changed.
	Keys map[string][]string `json:"keys,omitempty"`
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	Items      []AuditItem `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

// Audit returns a page of the audit trail.
func (ix *Index) Audit(ctx context.Context, f AuditFilter) (AuditPage, error) {
	var w conds
	w.between(f.From, f.To)
	w.equal("user", f.User)
	w.equal("action", f.Action)
	for _, name := range slices.Sorted(maps.Keys(f.Keys)) { // each key's entries, newest first, from its index
		v := f.Keys[name]
		if ix.fold[name] {
			v = hl7.FoldKey(v)
		}
		w.where = append(w.where, "seq IN (SELECT seq FROM audit_keys WHERE name = ? AND value = ?)")
		w.args = append(w.args, name, v)
	}
	if err := w.before("seq", f.Cursor); err != nil {
		return AuditPage{}, err
	}
	n := limit(f.Limit)
	rows, err := ix.r.QueryContext(ctx, fmt.Sprintf("SELECT seq, at, user, action, result, ids, detail, remote, keys FROM audit WHERE %s ORDER BY seq DESC LIMIT %d", w.sql(), n+1), w.args...)
	if err != nil {
		return AuditPage{}, err
	}
	defer rows.Close()
	p := AuditPage{Items: []AuditItem{}}
	for rows.Next() {
		var it AuditItem
		var seq, at int64
		var ids, keys string
		if err := rows.Scan(&seq, &at, &it.User, &it.Action, &it.Result, &ids, &it.Detail, &it.Remote, &keys); err != nil {
			return p, err
		}
		if keys != "" {
			_ = json.Unmarshal([]byte(keys), &it.Keys)
		}
		it.Seq, it.At = strconv.FormatInt(seq, 10), time.Unix(0, at).UTC()
		_ = json.Unmarshal([]byte(ids), &it.IDs)
		if it.IDs == nil {
			it.IDs = []string{}
		}
		p.Items = append(p.Items, it)
	}
	if len(p.Items) > n {
		p.Items = p.Items[:n]
		p.NextCursor = p.Items[n-1].Seq
	}
	return p, rows.Err()
}

// Prune removes what the streams no longer hold: messages (with their
// keys, copies, what was sent and journeys) before firstIn, dead letters before
// firstDLQ, audit entries before firstAudit. In chunks, so that a large
// prune does not hold the writer long.
func (ix *Index) Prune(ctx context.Context, firstIn, firstDLQ, firstAudit uint64) error {
	for _, q := range []struct {
		sql   string
		bound uint64
	}{
		{`DELETE FROM keys WHERE message IN (SELECT message FROM keys WHERE message < ? LIMIT 10000)`, firstIn},
		{`DELETE FROM dests WHERE message IN (SELECT message FROM dests WHERE message < ? LIMIT 10000)`, firstIn},
		{`DELETE FROM journeys WHERE message IN (SELECT message FROM journeys WHERE message < ? LIMIT 10000)`, firstIn},
		{`DELETE FROM sent WHERE message IN (SELECT message FROM sent WHERE message < ? LIMIT 10000)`, firstIn},
		{`DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id < ? LIMIT 10000)`, firstIn},
		{`DELETE FROM dlq WHERE id IN (SELECT id FROM dlq WHERE id < ? LIMIT 10000)`, firstDLQ},
		{`DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE seq < ? LIMIT 10000)`, firstAudit},
		{`DELETE FROM audit_keys WHERE seq IN (SELECT seq FROM audit_keys WHERE seq < ? LIMIT 10000)`, firstAudit},
		{ix.pruneTexts, firstIn},
	} {
		if q.sql == "" {
			continue
		}
		for {
			res, err := ix.w.ExecContext(ctx, q.sql, q.bound)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				break
			}
		}
	}
	// Refused messages go with the events of their time (HL7_EVENTS keeps
	// what HL7_IN keeps): older than the oldest message left.
	_, err := ix.w.ExecContext(ctx, `DELETE FROM refused WHERE at < (SELECT MIN(received_at) FROM messages)`)
	return err
}

// IDs are the page's message ids, for an audit entry.
func (p Page) IDs() []string {
	ids := make([]string, len(p.Items))
	for i, s := range p.Items {
		ids[i] = s.ID
	}
	return ids
}

// RefusedFilter selects refused messages.
type RefusedFilter struct {
	From, To            time.Time
	Listener, ControlID string
	Listeners           []string // when set: refused on one of these
	Limit               int
	Cursor              string
}

// Refused is a message ingest did not store, as the history keeps it:
// what could be read of its header, the ACK its sender got and why.
// Never its content: there is none to show.
type Refused struct {
	ID         string    `json:"id"`
	At         time.Time `json:"at"`
	Listener   string    `json:"listener"`
	Remote     string    `json:"remote_addr,omitempty"`
	Ack        string    `json:"ack"`  // AR, AE, CR, CE
	Code       string    `json:"code"` // HL7 table 0357
	Reason     string    `json:"reason"`
	Type       string    `json:"type,omitempty"`
	Event      string    `json:"event,omitempty"`
	ControlID  string    `json:"control_id,omitempty"`
	SendingApp string    `json:"sending_application,omitempty"`
	SendingFac string    `json:"sending_facility,omitempty"`
	Size       int       `json:"size"`
}

// RefusedPage is one page of refused messages, newest first.
type RefusedPage struct {
	Items      []Refused `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// RefusedMessages returns a page of the messages ingest refused.
func (ix *Index) RefusedMessages(ctx context.Context, f RefusedFilter) (RefusedPage, error) {
	var w conds
	w.between(f.From, f.To)
	w.equal("listener", f.Listener)
	w.equal("control_id", f.ControlID)
	if f.Listeners != nil {
		in, a := inStrings(f.Listeners)
		w.where, w.args = append(w.where, "listener IN "+in), append(w.args, a...)
	}
	if err := w.before("rowid", f.Cursor); err != nil {
		return RefusedPage{}, err
	}
	n := limit(f.Limit)
	rows, err := ix.r.QueryContext(ctx, fmt.Sprintf(`SELECT rowid, at, listener, remote, ack, code, reason, type, event, control_id, sending_app, sending_fac, size
		FROM refused WHERE %s ORDER BY rowid DESC LIMIT %d`, w.sql(), n+1), w.args...)
	if err != nil {
		return RefusedPage{}, err
	}
	defer rows.Close()
	p := RefusedPage{Items: []Refused{}}
	for rows.Next() {
		var r Refused
		var id, at int64
		if err := rows.Scan(&id, &at, &r.Listener, &r.Remote, &r.Ack, &r.Code, &r.Reason, &r.Type, &r.Event, &r.ControlID, &r.SendingApp, &r.SendingFac, &r.Size); err != nil {
			return p, err
		}
		r.ID, r.At = strconv.FormatInt(id, 10), time.Unix(0, at).UTC()
		p.Items = append(p.Items, r)
	}
	if len(p.Items) > n {
		p.Items = p.Items[:n]
		p.NextCursor = p.Items[n-1].ID
	}
	return p, rows.Err()
}

// conds builds a WHERE clause of a listing: a time range on column at,
// columns equal to values given, and a page cursor.
type conds struct {
	where []string
	args  []any
}

func (c *conds) add(cond string, arg any) {
	c.where, c.args = append(c.where, cond), append(c.args, arg)
}

// between keeps rows at or after from and before to (a zero time: no bound).
func (c *conds) between(from, to time.Time) {
	if !from.IsZero() {
		c.add("at >= ?", from.UnixNano())
	}
	if !to.IsZero() {
		c.add("at < ?", to.UnixNano())
	}
}

// equal keeps rows whose column is v, unless v is "".
func (c *conds) equal(column, v string) {
	if v != "" {
		c.add(column+" = ?", v)
	}
}

// before keeps rows whose column is below the cursor (a page's last), if any.
func (c *conds) before(column, cursor string) error {
	if cursor == "" {
		return nil
	}
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil {
		return ErrBadCursor
	}
	c.add(column+" < ?", n)
	return nil
}

func (c *conds) sql() string {
	if len(c.where) == 0 {
		return "1"
	}
	return strings.Join(c.where, " AND ")
}
