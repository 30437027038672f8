package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// PostgresOptions are the keys of type postgres (with time_zone, which
// reads its HL7 times).
type PostgresOptions struct {
	URL      string            `mapstructure:"url" secret:"expand"`   // postgres://USER@HOST/DB?..., no password
	Password string            `mapstructure:"password" secret:"ref"` // by reference only
	Table    string            `mapstructure:"table"`                 // [schema.]table the rows go to
	Columns  map[string]string `mapstructure:"columns"`               // column: field path or $message, $message_id...
	RowPer   string            `mapstructure:"row_per"`               // a segment ID: a row per such segment (OBX); empty: a row per message
}

// type postgres: a row per message (or per repeated segment) in a
// PostgreSQL table, in one transaction per message.
func init() {
	Register(Type[PostgresOptions]{
		Name:       "postgres",
		Encodings:  []string{"er7"},
		ReadsTimes: true,
		Check:      checkPostgres,
		New: func(o *PostgresOptions, d config.DestinationConfig, env Env) (Deliverer, error) {
			return NewPostgresDeliverer(o, d, env)
		},
	})
}

// The values a column may take besides a field path.
const (
	ColMessage    = "$message"     // the message as routed, ER7
	ColJSON       = "$json"        // the message as JSON (hl7.EncodeJSON)
	ColMessageID  = "$message_id"  // the broker's unique ID of the message: the row's key
	ColRow        = "$row"         // the row's number in its message, from 1 (with row_per: the segment's)
	ColControlID  = "$control_id"  // MSH-10
	ColInSeq      = "$in_seq"      // the message's number in the broker's history
	ColReceivedAt = "$received_at" // when the broker received it
)

var pgSpecials = []string{ColMessage, ColJSON, ColMessageID, ColRow, ColControlID, ColInSeq, ColReceivedAt}

var (
	pgIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
	pgTable = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)
)

func checkPostgres(o *PostgresOptions, _ config.DestinationConfig, key string, c *config.Checker) {
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		c.Add(key+".url", "%s is not a postgres:// URL", secret.URL(o.URL))
	} else if _, has := u.User.Password(); has {
		c.Add(key+".url", "holds a password: give it as password: ${env:NAME} or ${file:PATH} instead")
	}
	checkTableColumns(o, "postgres", key, c)
}

// checkTableColumns checks what a database destination's rows are made
// of: its table, columns and row_per (postgres and mysql alike).
func checkTableColumns(o *PostgresOptions, typ, key string, c *config.Checker) {
	if !pgTable.MatchString(o.Table) {
		c.Add(key+".table", "%q is not a table name (table or schema.table, letters, digits and _)", o.Table)
	}
	if len(o.Columns) == 0 {
		c.Add(key+".columns", "a %s destination needs columns: {column: field path or $message...}", typ)
	}
	var ids, rows int
	for _, name := range slices.Sorted(maps.Keys(o.Columns)) {
		v := strings.TrimSpace(o.Columns[name])
		switch {
		case !pgIdent.MatchString(name):
			c.Add(key+".columns."+name, "is not a column name (letters, digits and _)")
		case v == ColMessageID:
			ids++
		case v == ColRow:
			rows++
		case strings.HasPrefix(v, "$") && !slices.Contains(pgSpecials, v):
			c.Add(key+".columns."+name, "%q is not one of %s", v, strings.Join(pgSpecials, ", "))
		case !strings.HasPrefix(v, "$"):
			if _, err := hl7.ParsePath(v); err != nil {
				c.Add(key+".columns."+name, "%s", err.Error())
			}
		}
	}
	if ids != 1 {
		c.Add(key+".columns", "map exactly one column to $message_id, with a unique index on it: a retry must not add a row twice")
	}
	if o.RowPer != "" {
		if p, err := hl7.ParsePath(o.RowPer); err != nil || p.Field != 0 || p.Occurrence != 0 {
			c.Add(key+".row_per", "%q is not a segment ID such as OBX", o.RowPer)
		}
		if rows != 1 {
			c.Add(key+".columns", "with row_per, map exactly one column to $row, and make ($message_id, $row) the unique index")
		}
	}
}

// tableColumns parses a database destination's columns, in name order.
func tableColumns(columns map[string]string) ([]pgColumn, error) {
	var out []pgColumn
	for _, name := range slices.Sorted(maps.Keys(columns)) {
		v := strings.TrimSpace(columns[name])
		col := pgColumn{name: name}
		if strings.HasPrefix(v, "$") {
			col.special = v
		} else {
			var err error
			if col.path, err = hl7.ParsePath(v); err != nil {
				return nil, fmt.Errorf("columns.%s: %w", name, err)
			}
		}
		out = append(out, col)
	}
	return out, nil
}

// rawValue is column c's value in row i (from 1) of m: text, or (for
// $received_at) a time; ok false for NULL.
func (c pgColumn) rawValue(m *hl7.Message, msg Message, rowPer string, i int) (text string, at time.Time, err error) {
	switch c.special {
	case "":
		path := c.path
		if rowPer != "" && path.Segment == rowPer && path.Occurrence == 0 {
			path.Occurrence = i
		}
		text = m.ValueString(path)
		if text == `""` { // HL7's explicit null
			text = ""
		}
	case ColMessage:
		text = string(msg.Data)
	case ColJSON:
		b, err := hl7.EncodeJSON(m)
		if err != nil {
			return "", at, fmt.Errorf("column %s: the message cannot be encoded as JSON: %w", c.name, err)
		}
		text = string(b)
	case ColMessageID:
		text = MessageID(msg)
	case ColRow:
		text = strconv.Itoa(i)
	case ColControlID:
		text = msg.ControlID
	case ColInSeq:
		text = strconv.FormatUint(msg.InSeq, 10)
	case ColReceivedAt:
		at = msg.ReceivedAt
	}
	return text, at, nil
}

// what names a column's source in a reason: its path or special.
func (c pgColumn) what() string {
	if c.special == "" {
		return c.path.String()
	}
	return c.special
}

// pgColumn is one mapped column: a field path, or one of the specials.
type pgColumn struct {
	name    string
	special string
	path    hl7.Path
}

// PostgresDeliverer inserts a row per message, or per segment named by
// RowPer, in one transaction, with ON CONFLICT DO NOTHING on its key
// columns ($message_id, and $row): a retry after a commit whose answer
// was lost adds nothing. Values are typed by the table's own column
// types: HL7 times become timestamps with their zone, numbers numbers,
// and an empty field NULL.
//
// A data or constraint error (SQLSTATE classes 22 and 23) is rejected
// with the database's code, constraint and column, never its message
// (which can quote values); anything else, a lost connection among them,
// is retried.
type PostgresDeliverer struct {
	table   string // quoted
	rowPer  string
	loc     *time.Location
	columns []pgColumn
	insert  string
	timeout time.Duration
	pool    *pgxpool.Pool

	mu    sync.Mutex
	types []uint32 // the columns' type OIDs, read once (again after a schema error)
}

// NewPostgresDeliverer makes a deliverer for d with its own pool of one
// connection, opened at the first delivery.
func NewPostgresDeliverer(o *PostgresOptions, d config.DestinationConfig, env Env) (*PostgresDeliverer, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("destination %s: url: %w", d.Name, secret.Error(err))
	}
	cfg.ConnConfig.Password = o.Password
	if env.TLS != nil {
		t := env.TLS.Clone()
		if t.ServerName == "" {
			t.ServerName = cfg.ConnConfig.Host
		}
		cfg.ConnConfig.TLSConfig = t
		cfg.ConnConfig.Fallbacks = nil
	}
	cfg.MaxConns = 1
	if d.Timeout > 0 {
		cfg.ConnConfig.ConnectTimeout = d.Timeout
	}
	loc, err := config.LoadZone(d.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("destination %s: time_zone: %w", d.Name, err)
	}
	p := &PostgresDeliverer{table: pgx.Identifier(strings.Split(o.Table, ".")).Sanitize(), rowPer: o.RowPer, loc: loc, timeout: d.Timeout}
	var names, params, key []string
	if p.columns, err = tableColumns(o.Columns); err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	for _, col := range p.columns {
		q := pgx.Identifier{col.name}.Sanitize()
		names = append(names, q)
		params = append(params, "$"+strconv.Itoa(len(names)))
		if col.special == ColMessageID || col.special == ColRow && o.RowPer != "" {
			key = append(key, q)
		}
	}
	p.insert = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING",
		p.table, strings.Join(names, ", "), strings.Join(params, ", "), strings.Join(key, ", "))
	if p.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, secret.Error(err))
	}
	return p, nil
}

// Close closes the pool.
func (p *PostgresDeliverer) Close() error { p.pool.Close(); return nil }

// Deliver inserts msg's rows.
func (p *PostgresDeliverer) Deliver(ctx context.Context, msg Message) Result {
	m, n, done := rowsOf(msg, p.rowPer)
	if done != nil {
		return *done
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	types, err := p.columnTypes(ctx)
	if err != nil {
		return p.failed(err)
	}
	rows := make([][]any, n)
	for i := range rows {
		if rows[i], err = p.row(m, msg, i+1, types); err != nil {
			return Result{Outcome: Rejected, Reason: err.Error()}
		}
	}
	// One batch is one round trip and one transaction: its statements
	// share one Sync, which PostgreSQL runs as an implicit transaction
	// block, all or nothing (the manual's "Pipelining" and "Extended
	// Query"). TestPostgresRejectsWhatWillNeverSucceed checks it.
	var inserted int64
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(p.insert, r...).Exec(func(tag pgconn.CommandTag) error { inserted += tag.RowsAffected(); return nil })
	}
	var res Result
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		res = p.failed(err)
	} else {
		res = Result{Outcome: Delivered, Code: "INSERT " + strconv.FormatInt(inserted, 10)}
		res.Response = []byte(res.Code)
	}
	res.Sent = p.rowValues(rows)
	return res
}

// rowValues is what an insert sent, for the message's page: the table
// and each row's values by column, as JSON.
func (p *PostgresDeliverer) rowValues(rows [][]any) []byte { return rowsJSON(p.table, p.columns, rows) }

// rowsOf parses a database destination's message and counts its rows:
// one, or one per rowPer segment. done is the Result when there is
// nothing to insert (a message that does not parse, no such segment).
func rowsOf(msg Message, rowPer string) (m *hl7.Message, n int, done *Result) {
	m, err := hl7.Parse(msg.Data)
	if err != nil {
		return nil, 0, &Result{Outcome: Rejected, Reason: "the message does not parse: " + err.Error()}
	}
	n = 1
	if rowPer != "" {
		n = m.Count(hl7.Path{Segment: rowPer})
	}
	if n == 0 {
		return nil, 0, &Result{Outcome: Delivered, Code: "INSERT 0", Reason: "no " + rowPer + " segment: no row"}
	}
	return m, n, nil
}

// rowsJSON is the rows an insert sent to table, each by column, as JSON.
func rowsJSON(table string, columns []pgColumn, rows [][]any) []byte {
	out := struct {
		Table string           `json:"table"`
		Rows  []map[string]any `json:"rows"`
	}{Table: table}
	for _, r := range rows {
		row := make(map[string]any, len(r))
		for i, c := range columns {
			row[c.name] = r[i]
		}
		out.Rows = append(out.Rows, row)
	}
	b, err := json.Marshal(out)
	if err != nil { // a value JSON cannot hold: say so rather than show less
		return []byte(`{"table":` + strconv.Quote(table) + `,"error":"the row values cannot be shown as JSON"}`)
	}
	return b
}

// columnTypes are the type OIDs of the insert's parameters, as the
// server describes the statement.
func (p *PostgresDeliverer) columnTypes(ctx context.Context) ([]uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.types != nil {
		return p.types, nil
	}
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	sd, err := c.Conn().Prepare(ctx, "", p.insert)
	if err != nil {
		return nil, err
	}
	p.types = sd.ParamOIDs
	return p.types, nil
}

// row is the values of row i (from 1) of m, typed for the columns.
func (p *PostgresDeliverer) row(m *hl7.Message, msg Message, i int, types []uint32) ([]any, error) {
	out := make([]any, len(p.columns))
	for j, c := range p.columns {
		var oid uint32
		if j < len(types) {
			oid = types[j]
		}
		v, at, err := c.rawValue(m, msg, p.rowPer, i)
		if err != nil {
			return nil, err
		}
		if c.special == ColReceivedAt {
			if !at.IsZero() {
				out[j] = at
			}
			continue
		}
		val, err := p.typed(v, oid)
		if err != nil {
			return nil, fmt.Errorf("column %s: %s %s", c.name, c.what(), err.Error())
		}
		out[j] = val
	}
	return out, nil
}

// typed converts v for a column of type oid: nil (NULL) when empty.
// Its errors say what v is not, never what it is.
func (p *PostgresDeliverer) typed(v string, oid uint32) (any, error) {
	if v == "" {
		return nil, nil
	}
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(v), "+"), 10, 64)
		if err != nil {
			return nil, errors.New("is not a whole number")
		}
		return n, nil
	case pgtype.Float4OID, pgtype.Float8OID:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, errors.New("is not a number")
		}
		return f, nil
	case pgtype.NumericOID:
		s := strings.TrimPrefix(strings.TrimSpace(v), "+")
		if _, err := strconv.ParseFloat(s, 64); err != nil || strings.ContainsAny(s, "xXpP_") || strings.EqualFold(s, "inf") {
			return nil, errors.New("is not a number")
		}
		return s, nil
	case pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
		t, err := hl7.ParseTimeIn(strings.TrimSpace(v), p.loc)
		if err != nil {
			return nil, errors.New("is not an HL7 date/time (YYYY[MM[DD[HHMM[SS[.S]]]]][+/-ZZZZ])")
		}
		if oid == pgtype.TimestamptzOID {
			return t, nil
		}
		// A timestamp or date without zone keeps the clock as written.
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), nil
	case pgtype.BoolOID:
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "Y", "YES", "T", "TRUE", "1":
			return true, nil
		case "N", "NO", "F", "FALSE", "0":
			return false, nil
		}
		return nil, errors.New("is not Y or N")
	case pgtype.ByteaOID:
		return []byte(v), nil
	}
	return v, nil
}

// MessageID is a message's unique ID across the broker's life: its
// number in the history, then when it was received (a store started
// afresh numbers from 1 again). A retry or a replay of the same message
// has the same ID.
func MessageID(msg Message) string {
	if msg.ReceivedAt.IsZero() {
		return strconv.FormatUint(msg.InSeq, 10)
	}
	return strconv.FormatUint(msg.InSeq, 10) + "-" + msg.ReceivedAt.UTC().Format("20060102T150405.000000000Z")
}

// failed is the Result of a database error: rejected when it will never
// succeed (data and constraint errors), retried otherwise.
func (p *PostgresDeliverer) failed(err error) Result {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// The driver's own refusal to encode a value quotes the value:
		// name the column instead. It will not encode on a retry either.
		if _, rest, ok := strings.Cut(err.Error(), "failed to encode args["); ok {
			col := "a column"
			if i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)]); err == nil && i >= 0 && i < len(p.columns) {
				col = "column " + p.columns[i].name
			}
			return Result{Outcome: Rejected, Reason: "PostgreSQL: the value for " + col + " cannot be encoded for its type"}
		}
		return Result{Outcome: Retry, Reason: "PostgreSQL: " + secret.Error(err).Error()}
	}
	if pgSchemaError(pe.Code) {
		p.mu.Lock()
		p.types = nil // the table may have changed: describe it again
		p.mu.Unlock()
	}
	reason := pgReason(pe)
	if pe.Code == "42P10" {
		reason += ": the table needs a unique index on the $message_id column (and $row with row_per)"
	}
	switch pe.Code[:2] {
	case "22", "23":
		return Result{Outcome: Rejected, Reason: reason, Code: pe.Code}
	}
	return Result{Outcome: Retry, Reason: reason, Code: pe.Code}
}

func pgSchemaError(code string) bool { return strings.HasPrefix(code, "42") || code == "0A000" }

// pgReason names a database error by its SQLSTATE, and the table,
// constraint and column it names: the message and detail can quote
// values, so they are left out.
func pgReason(pe *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString("PostgreSQL error " + pe.Code)
	if name := pgCodeNames[pe.Code]; name != "" {
		b.WriteString(" (" + name + ")")
	}
	for _, kv := range [][2]string{{"table", pe.TableName}, {"constraint", pe.ConstraintName}, {"column", pe.ColumnName}, {"type", pe.DataTypeName}} {
		if kv[1] != "" {
			b.WriteString(", " + kv[0] + " " + kv[1])
		}
	}
	return b.String()
}

// pgCodeNames are the SQLSTATEs a delivery meets most, by their names in
// PostgreSQL's manual (Appendix A).
var pgCodeNames = map[string]string{
	"22001": "string_data_right_truncation",
	"22003": "numeric_value_out_of_range",
	"22007": "invalid_datetime_format",
	"22008": "datetime_field_overflow",
	"22P02": "invalid_text_representation",
	"22021": "character_not_in_repertoire",
	"23502": "not_null_violation",
	"23503": "foreign_key_violation",
	"23505": "unique_violation",
	"23514": "check_violation",
	"23P01": "exclusion_violation",
	"25006": "read_only_sql_transaction",
	"28000": "invalid_authorization_specification",
	"28P01": "invalid_password",
	"3D000": "invalid_catalog_name",
	"40001": "serialization_failure",
	"40P01": "deadlock_detected",
	"42501": "insufficient_privilege",
	"42703": "undefined_column",
	"42P01": "undefined_table",
	"42P10": "invalid_column_reference",
	"42804": "datatype_mismatch",
	"53300": "too_many_connections",
	"57P01": "admin_shutdown",
	"57P03": "cannot_connect_now",
}
