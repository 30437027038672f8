package delivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// MySQLOptions are the keys of type mysql: those of type postgres.
type MySQLOptions PostgresOptions

// type mysql: a row per message (or per repeated segment) in a MySQL or
// MariaDB table, in one transaction per message, with the guarantees of
// type postgres.
func init() {
	Register(Type[MySQLOptions]{
		Name:       "mysql",
		Encodings:  []string{"er7"},
		ReadsTimes: true,
		Check: func(o *MySQLOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			if u, err := url.Parse(o.URL); err != nil || u.Scheme != "mysql" || u.Host == "" {
				c.Add(key+".url", "%s is not a mysql://USER@HOST:PORT/DATABASE URL", secret.URL(o.URL))
			} else if _, has := u.User.Password(); has {
				c.Add(key+".url", "holds a password: give it as password: ${env:NAME} or ${file:PATH} instead")
			} else if strings.Trim(u.Path, "/") == "" && !strings.Contains(o.Table, ".") {
				c.Add(key+".url", "names no database: mysql://USER@HOST:PORT/DATABASE (or give table as database.table)")
			}
			po := PostgresOptions(*o)
			checkTableColumns(&po, "mysql", key, c)
		},
		New: func(o *MySQLOptions, d config.DestinationConfig, env Env) (Deliverer, error) {
			return NewMySQLDeliverer(o, d, env)
		},
	})
}

// MySQLDeliverer inserts a row per message, or per segment named by
// RowPer, in one transaction; a row refused as a duplicate of a unique
// index on the $message_id column (with $row) is already there and left
// as it is: a retry after a commit whose answer was lost adds nothing. A
// duplicate of any other unique index is a constraint error.
// Values are typed by the table's columns (information_schema): HL7 times
// become DATETIME or TIMESTAMP, numbers numbers, an empty field NULL. The
// session is strict (STRICT_ALL_TABLES): a value that does not fit is an
// error, never a silent truncation.
//
// A data or constraint error (SQLSTATE classes 22 and 23) is rejected
// with the server's error number and the constraint or column it names,
// never its message (which can quote values); anything else, a lost
// connection among them, is retried.
type MySQLDeliverer struct {
	table, schema, name string // quoted table; its database and name, for information_schema
	rowPer              string
	loc                 *time.Location
	columns             []pgColumn
	insert              string
	timeout             time.Duration
	db                  *sql.DB

	mu    sync.Mutex
	types []mysqlType     // the columns' types, read once (again after a schema error)
	keys  map[string]bool // the unique indexes on the $message_id column
	idCol string          // that column
}

// mysqlType is a column's DATA_TYPE and whether it is TINYINT(1) (a
// boolean).
type mysqlType struct {
	data string
	bool bool
}

// NewMySQLDeliverer makes a deliverer for d with its own connection,
// opened at the first delivery.
func NewMySQLDeliverer(o *MySQLOptions, d config.DestinationConfig, env Env) (*MySQLDeliverer, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("destination %s: url: %w", d.Name, secret.Error(err))
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = u.User.Username(), o.Password, "tcp", u.Host
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		c.Addr = net.JoinHostPort(u.Host, "3306")
	}
	c.DBName = strings.Trim(u.Path, "/")
	c.ParseTime, c.Loc = true, time.UTC
	c.Params = map[string]string{"sql_mode": "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'", "time_zone": "'+00:00'"}
	if d.Timeout > 0 {
		c.Timeout, c.ReadTimeout, c.WriteTimeout = d.Timeout, d.Timeout, d.Timeout
	}
	if env.TLS != nil {
		t := env.TLS.Clone()
		if t.ServerName == "" {
			t.ServerName, _, _ = net.SplitHostPort(c.Addr)
		}
		c.TLS = t
	}
	connector, err := mysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, secret.Error(err))
	}
	loc, err := config.LoadZone(d.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("destination %s: time_zone: %w", d.Name, err)
	}
	p := &MySQLDeliverer{rowPer: o.RowPer, loc: loc, timeout: d.Timeout, db: sql.OpenDB(connector)}
	p.db.SetMaxOpenConns(1)
	p.schema, p.name = c.DBName, o.Table
	if db, name, ok := strings.Cut(o.Table, "."); ok {
		p.schema, p.name = db, name
	}
	p.table = quoteMySQL(p.name)
	if p.schema != "" {
		p.table = quoteMySQL(p.schema) + "." + p.table
	}
	if p.columns, err = tableColumns(o.Columns); err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	var names, params []string
	for _, col := range p.columns {
		q := quoteMySQL(col.name)
		names, params = append(names, q), append(params, "?")
		if col.special == ColMessageID {
			p.idCol = col.name
		}
	}
	p.insert = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", p.table, strings.Join(names, ", "), strings.Join(params, ", "))
	return p, nil
}

// quoteMySQL quotes an identifier (letters, digits and _, as checked).
func quoteMySQL(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Close closes the connection.
func (p *MySQLDeliverer) Close() error { return p.db.Close() }

// Deliver inserts msg's rows.
func (p *MySQLDeliverer) Deliver(ctx context.Context, msg Message) Result {
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
	inserted, err := p.insertAll(ctx, rows)
	var res Result
	if err != nil {
		res = p.failed(err)
	} else {
		res = Result{Outcome: Delivered, Code: "INSERT " + strconv.FormatInt(inserted, 10)}
		res.Response = []byte(res.Code)
	}
	res.Sent = rowsJSON(p.table, p.columns, rows)
	return res
}

// insertAll inserts rows in one transaction; a duplicate's "affected
// rows" is 0, so the count is of rows new.
func (p *MySQLDeliverer) insertAll(ctx context.Context, rows [][]any) (int64, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var inserted int64
	for _, r := range rows {
		res, err := tx.ExecContext(ctx, p.insert, r...)
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1062 && p.ownKey(me.Message) {
			continue // already there: an earlier attempt committed it
		}
		if err != nil {
			return 0, err
		}
		if n, err := res.RowsAffected(); err == nil {
			inserted += n
		}
	}
	return inserted, tx.Commit()
}

// dupKey finds the index a duplicate-key error names (MariaDB: 'name';
// MySQL 8: 'table.name').
var dupKey = regexp.MustCompile(`for key '(?:[^'.]*\.)?([^']+)'`)

// ownKey says whether a duplicate-key error is about a unique index on
// the $message_id column: the row is already there.
func (p *MySQLDeliverer) ownKey(msg string) bool {
	m := dupKey.FindStringSubmatch(msg)
	p.mu.Lock()
	defer p.mu.Unlock()
	return m != nil && p.keys[m[1]]
}

// columnTypes are the types of the insert's columns, from
// information_schema, and the unique indexes on the $message_id column.
func (p *MySQLDeliverer) columnTypes(ctx context.Context) ([]mysqlType, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.types != nil {
		return p.types, nil
	}
	rows, err := p.db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, p.schema, p.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byName := map[string]mysqlType{}
	for rows.Next() {
		var name, data, full string
		if err := rows.Scan(&name, &data, &full); err != nil {
			return nil, err
		}
		byName[strings.ToLower(name)] = mysqlType{data: strings.ToLower(data), bool: strings.EqualFold(full, "tinyint(1)")}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(byName) == 0 {
		return nil, &mysql.MySQLError{Number: 1146, SQLState: [5]byte{'4', '2', 'S', '0', '2'}, Message: "no such table"}
	}
	types := make([]mysqlType, len(p.columns))
	for i, c := range p.columns {
		t, ok := byName[strings.ToLower(c.name)]
		if !ok {
			return nil, &mysql.MySQLError{Number: 1054, SQLState: [5]byte{'4', '2', 'S', '2', '2'}, Message: "Unknown column '" + c.name + "'"}
		}
		types[i] = t
	}
	keys := map[string]bool{}
	krows, err := p.db.QueryContext(ctx, `SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND COLUMN_NAME = ?`, p.schema, p.name, p.idCol)
	if err != nil {
		return nil, err
	}
	defer krows.Close()
	for krows.Next() {
		var k string
		if err := krows.Scan(&k); err != nil {
			return nil, err
		}
		keys[k] = true
	}
	if len(keys) == 0 {
		return nil, errNoMessageKey
	}
	p.types, p.keys = types, keys
	return types, nil
}

// row is the values of row i (from 1) of m, typed for the columns.
func (p *MySQLDeliverer) row(m *hl7.Message, msg Message, i int, types []mysqlType) ([]any, error) {
	out := make([]any, len(p.columns))
	for j, c := range p.columns {
		v, at, err := c.rawValue(m, msg, p.rowPer, i)
		if err != nil {
			return nil, err
		}
		if c.special == ColReceivedAt {
			if !at.IsZero() {
				out[j] = at.UTC()
			}
			continue
		}
		if out[j], err = p.typed(v, types[j]); err != nil {
			return nil, fmt.Errorf("column %s: %s %s", c.name, c.what(), err.Error())
		}
	}
	return out, nil
}

// typed converts v for a column of type t: nil (NULL) when empty. Its
// errors say what v is not, never what it is.
func (p *MySQLDeliverer) typed(v string, t mysqlType) (any, error) {
	if v == "" {
		return nil, nil
	}
	s := strings.TrimSpace(v)
	switch {
	case t.bool:
		switch strings.ToUpper(s) {
		case "Y", "YES", "T", "TRUE", "1":
			return true, nil
		case "N", "NO", "F", "FALSE", "0":
			return false, nil
		}
		return nil, errors.New("is not Y or N")
	case t.data == "tinyint" || t.data == "smallint" || t.data == "mediumint" || t.data == "int" || t.data == "bigint":
		n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
		if err != nil {
			return nil, errors.New("is not a whole number")
		}
		return n, nil
	case t.data == "float" || t.data == "double":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, errors.New("is not a number")
		}
		return f, nil
	case t.data == "decimal":
		d := strings.TrimPrefix(s, "+")
		if _, err := strconv.ParseFloat(d, 64); err != nil || strings.ContainsAny(d, "xXpP_eE") || strings.EqualFold(d, "inf") {
			return nil, errors.New("is not a number")
		}
		return d, nil
	case t.data == "datetime" || t.data == "timestamp" || t.data == "date":
		tm, err := hl7.ParseTimeIn(s, p.loc)
		if err != nil {
			return nil, errors.New("is not an HL7 date/time (YYYY[MM[DD[HHMM[SS[.S]]]]][+/-ZZZZ])")
		}
		if t.data == "timestamp" { // stored as an instant: sent in UTC, the session's zone
			return tm.UTC(), nil
		}
		// DATETIME and DATE keep the clock as written.
		return time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC), nil
	case strings.HasSuffix(t.data, "blob") || strings.HasSuffix(t.data, "binary"):
		return []byte(v), nil
	}
	return v, nil
}

// errNoMessageKey: the table has no unique index on the $message_id
// column, so a retry could add a row twice. Retried: an admin adds it.
var errNoMessageKey = errors.New("the table needs a unique index on the $message_id column (and $row with row_per)")

// failed is the Result of a database error: rejected when it will never
// succeed (data and constraint errors), retried otherwise.
func (p *MySQLDeliverer) failed(err error) Result {
	if errors.Is(err, errNoMessageKey) {
		return Result{Outcome: Retry, Reason: "MySQL: " + err.Error()}
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return Result{Outcome: Retry, Reason: "MySQL: " + secret.Error(err).Error()}
	}
	state := string(me.SQLState[:])
	if strings.HasPrefix(state, "42") {
		p.mu.Lock()
		p.types = nil // the table may have changed: read it again
		p.mu.Unlock()
	}
	reason := mysqlReason(me)
	code := strconv.Itoa(int(me.Number))
	switch state[:2] {
	case "22", "23":
		return Result{Outcome: Rejected, Reason: reason, Code: code}
	}
	return Result{Outcome: Retry, Reason: reason, Code: code}
}

// mysqlNames find the constraint, column or key an error's message
// names; the message itself can quote values, so only these are kept.
var mysqlNames = []struct {
	what string
	re   *regexp.Regexp
}{
	{"constraint", regexp.MustCompile("CONSTRAINT `([^`]+)`")},
	{"constraint", regexp.MustCompile(`[Cc]heck constraint '([^']+)'`)},
	{"column", regexp.MustCompile(`[Cc]olumn '([^']+)'`)},
	{"key", regexp.MustCompile(`for key '([^']+)'`)},
	{"table", regexp.MustCompile("[Tt]able '([^']+)'")},
}

// mysqlReason names a database error by its number and SQLSTATE, and the
// constraint, column, key or table its message names.
func mysqlReason(me *mysql.MySQLError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MySQL error %d (SQLSTATE %s)", me.Number, string(me.SQLState[:]))
	for _, n := range mysqlNames {
		if m := n.re.FindStringSubmatch(me.Message); m != nil {
			b.WriteString(", " + n.what + " " + m[1])
		}
	}
	return b.String()
}
