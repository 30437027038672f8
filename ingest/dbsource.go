package ingest

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// DatabaseOptions are the keys of type database: a query polled on an
// interval, a message built of each row by the source's script, and the
// row then marked done (Mark) or passed (HighWater).
type DatabaseOptions struct {
	Driver   string        `mapstructure:"driver" enum:"postgres,mysql"`
	URL      string        `mapstructure:"url" secret:"expand"`   // postgres://USER@HOST/DB or mysql://USER@HOST:PORT/DB, no password
	Password string        `mapstructure:"password" secret:"ref"` // by reference only
	Query    string        `mapstructure:"query"`
	Interval time.Duration `mapstructure:"interval"` // between polls; default 5s
	// Mark is a statement run for each row once its message is stored,
	// with :column placeholders for the row's values (UPDATE results SET
	// sent = true WHERE id = :id).
	Mark string `mapstructure:"mark"`
	// HighWater is a column the query orders by: the query takes the
	// last value stored as its one parameter ($1 or ?) and returns the
	// rows after it. HighWaterStart is the value before the first row.
	HighWater      string `mapstructure:"high_water"`
	HighWaterStart string `mapstructure:"high_water_start"`
	Batch          int    `mapstructure:"batch"` // rows a poll takes at most; default 100
}

var markParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// type database: rows of a table turned into messages.
func init() {
	RegisterSource(SourceType[DatabaseOptions]{
		Name: "database",
		Rows: true,
		Check: func(o *DatabaseOptions, _ config.SourceConfig, key string, c *config.Checker) {
			want := map[string]string{"postgres": "postgres", "mysql": "mysql"}[o.Driver]
			if u, err := url.Parse(o.URL); err != nil || (u.Scheme != want && !(want == "postgres" && u.Scheme == "postgresql")) || u.Host == "" {
				c.Add(key+".url", "%s is not a %s:// URL", secret.URL(o.URL), o.Driver)
			} else if _, has := u.User.Password(); has {
				c.Add(key+".url", "holds a password: give it as password: ${env:NAME} or ${file:PATH} instead")
			}
			if strings.TrimSpace(o.Query) == "" {
				c.Add(key+".query", "a database source needs its query")
			}
			switch {
			case (o.Mark == "") == (o.HighWater == ""):
				c.Add(key, "give mark (a statement that marks a row done) or high_water (a column the query orders by), one of them")
			case o.Mark != "" && markParam.FindString(o.Mark) == "":
				c.Add(key+".mark", "names no :column of the row: it would mark every row, or none")
			}
			if o.Interval < 0 || o.Batch < 0 {
				c.Add(key, "interval and batch must not be negative")
			}
		},
		Defaults: func(o *DatabaseOptions, _ *config.SourceConfig) {
			if o.Interval == 0 {
				o.Interval = 5 * time.Second
			}
			if o.Batch == 0 {
				o.Batch = 100
			}
			if o.HighWater != "" && o.HighWaterStart == "" {
				o.HighWaterStart = "0"
			}
		},
		New: func(o *DatabaseOptions, s config.SourceConfig, env SourceEnv) (Source, error) {
			return newDatabaseSource(o, s, env)
		},
	})
}

// DatabaseSource polls a query and stores a message of each row, one at
// a time: the message is stored and flushed, where the source stopped is
// kept (RowStore), and only then is the row marked done (or passed, with a
// high-water column). A crash at any point loses no row and stores none
// twice: at start the source marks the row it stored last again (a mark
// is idempotent) and resumes after it, and a row read again has the same
// message ID. A database that is down is retried with a backoff.
type DatabaseSource struct {
	Config  config.SourceConfig
	Ingest  *Ingest
	Builder *Builder
	Rows    RowStore
	Sync    func(ctx context.Context) error
	Log     zerolog.Logger
	// afterStore, in tests, runs after a row's message is stored and its
	// place kept, before the row is marked: a crash there.
	afterStore func(place string) error

	o         *DatabaseOptions
	db        *sql.DB
	markSQL   string   // Mark with the driver's placeholders
	markCols  []string // the columns Mark takes, in order
	hw        any      // the high-water value: the last stored row's
	skipped   map[string]bool
	mu        sync.Mutex
	problem   string
	lastError time.Time
}

func newDatabaseSource(o *DatabaseOptions, s config.SourceConfig, env SourceEnv) (*DatabaseSource, error) {
	if env.Builder == nil {
		return nil, fmt.Errorf("source %s: a database source needs its script", s.Name)
	}
	d := &DatabaseSource{Config: s, Ingest: env.Ingest, Builder: env.Builder, Rows: env.Rows, Sync: env.Sync, Log: env.Log, o: o, skipped: map[string]bool{}}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("source %s: url: %w", s.Name, secret.Error(err))
	}
	switch o.Driver {
	case "postgres":
		cfg, err := pgx.ParseConfig(o.URL)
		if err != nil {
			return nil, fmt.Errorf("source %s: url: %w", s.Name, secret.Error(err))
		}
		cfg.Password = o.Password
		d.db = stdlib.OpenDB(*cfg)
	case "mysql":
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr, c.DBName = u.User.Username(), o.Password, "tcp", u.Host, strings.Trim(u.Path, "/")
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			c.Addr = net.JoinHostPort(u.Host, "3306")
		}
		c.ParseTime, c.Loc = true, time.UTC
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, secret.Error(err))
		}
		d.db = sql.OpenDB(conn)
	default:
		return nil, fmt.Errorf("source %s: driver %q is not postgres or mysql", s.Name, o.Driver)
	}
	d.db.SetMaxOpenConns(1)
	n := 0
	d.markSQL = markParam.ReplaceAllStringFunc(o.Mark, func(p string) string {
		d.markCols = append(d.markCols, p[1:])
		n++
		if o.Driver == "postgres" {
			return "$" + strconv.Itoa(n)
		}
		return "?"
	})
	return d, nil
}

// Problem is why the source cannot read just now ("" when it can).
func (d *DatabaseSource) Problem() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.problem
}

func (d *DatabaseSource) setProblem(p string) {
	d.mu.Lock()
	d.problem = p
	d.mu.Unlock()
}

// Run polls until ctx ends.
func (d *DatabaseSource) Run(ctx context.Context) error {
	defer d.db.Close()
	log := d.Log.With().Str("source", d.Config.Name).Logger()
	started := false
	failures := 0
	for {
		var err error
		if !started {
			err = d.resume(ctx)
			started = err == nil
		}
		more := false
		if err == nil {
			more, err = d.poll(ctx, log)
		}
		wait := d.o.Interval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			wait = min(d.o.Interval<<min(failures, 6), time.Minute)
			d.setProblem("database: " + err.Error())
			log.Warn().Str("reason", err.Error()).Dur("retry_in", wait).Msg("database source: cannot read; trying again")
		default:
			if failures > 0 {
				log.Info().Int("failures", failures).Msg("database source: reading again")
			}
			failures = 0
			d.setProblem("")
			if more {
				wait = 0 // a full batch: the next rows at once
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// place is where a row is: the high-water value after it, or the values
// its mark takes.
type place struct {
	HW   string   `json:"hw,omitempty"`
	Mark []string `json:"mark,omitempty"`
}

// resume reads where the source stopped: the high-water value, or the row
// stored last, whose mark is run again (a crash may have come between).
func (d *DatabaseSource) resume(ctx context.Context) error {
	raw, err := d.Rows.RowPlace(ctx, d.Config.Name)
	if err != nil {
		return err
	}
	var p place
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return fmt.Errorf("where it stopped cannot be read: %w", err)
		}
	}
	if d.o.HighWater != "" {
		d.hw = startValue(d.o.HighWaterStart)
		if p.HW != "" {
			d.hw = decodeValue(p.HW)
		}
		return nil
	}
	if len(p.Mark) > 0 {
		return d.mark(ctx, p.Mark, "the row stored last")
	}
	return nil
}

// mark runs the mark statement with a row's values (what names the row
// in an error, never by value).
func (d *DatabaseSource) mark(ctx context.Context, values []string, what string) error {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = decodeValue(v)
	}
	if _, err := d.db.ExecContext(ctx, d.markSQL, args...); err != nil {
		return fmt.Errorf("marking %s: %s", what, dbReason(err))
	}
	return nil
}

// poll reads one batch and stores each row's message; more says the batch
// was full.
func (d *DatabaseSource) poll(ctx context.Context, log zerolog.Logger) (more bool, err error) {
	var args []any
	if d.o.HighWater != "" {
		args = append(args, d.hw)
	}
	rows, err := d.db.QueryContext(ctx, d.o.Query, args...)
	if err != nil {
		return false, errors.New(dbReason(err))
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return false, errors.New(dbReason(err))
	}
	var batch []map[string]any
	for len(batch) < d.o.Batch && rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return false, errors.New(dbReason(err))
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = vals[i]
		}
		batch = append(batch, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, errors.New(dbReason(err))
	}
	for _, row := range batch {
		if err := d.one(ctx, row, log); err != nil {
			return false, err
		}
	}
	return len(batch) == d.o.Batch, nil
}

// one stores row's message, keeps where the source is, then marks the row
// (or passes it).
func (d *DatabaseSource) one(ctx context.Context, row map[string]any, log zerolog.Logger) error {
	var p place
	if d.o.HighWater != "" {
		v, ok := row[d.o.HighWater]
		if !ok {
			return fmt.Errorf("the query returns no column %s (high_water)", d.o.HighWater)
		}
		p.HW = encodeValue(v)
	} else {
		for _, c := range d.markCols {
			v, ok := row[c]
			if !ok {
				return fmt.Errorf("the query returns no column %s (mark)", c)
			}
			p.Mark = append(p.Mark, encodeValue(v))
		}
	}
	pb, _ := json.Marshal(p)
	where := string(pb)
	if d.skipped[where] {
		return nil // refused before, and not marked: left for a person
	}
	built := d.Builder.One(document(row))
	if built.Err != nil {
		return d.refused(ctx, where, p, "its script made no message: "+built.Err.Error(), log)
	}
	out := d.Ingest.Receive(ctx, built.Raw, Origin{Row: where})
	switch {
	case out.Err != nil:
		return d.refused(ctx, where, p, fmt.Sprintf("its message was refused (%s): %s", out.Code, out.Err.Reason), log)
	case !out.Stored:
		return errStoreUnavailable
	}
	if d.Sync != nil {
		if err := d.Sync(ctx); err != nil {
			return fmt.Errorf("storing: %w", err)
		}
	}
	return d.done(ctx, where, p)
}

// done keeps where the source is and marks the row (or passes it).
func (d *DatabaseSource) done(ctx context.Context, where string, p place) error {
	if err := d.Rows.KeepRow(ctx, d.Config.Name, where); err != nil {
		return fmt.Errorf("keeping where it is: %w", err)
	}
	if d.afterStore != nil {
		if err := d.afterStore(where); err != nil {
			return err
		}
	}
	if d.o.HighWater != "" {
		d.hw = decodeValue(p.HW)
		return nil
	}
	return d.mark(ctx, p.Mark, "a row done")
}

// refused logs a row that made no message (why, never the row's values:
// its place may hold an identifier). With a high-water column the source
// passes it (it would block every row after it); with a mark it is left
// unmarked for a person, and not read again until the source restarts.
func (d *DatabaseSource) refused(ctx context.Context, where string, p place, why string, log zerolog.Logger) error {
	if d.o.HighWater != "" {
		log.Warn().Str("reason", why).Msg("database source: a row made no message; passed")
		if err := d.Rows.KeepRow(ctx, d.Config.Name, where); err != nil {
			return fmt.Errorf("keeping where it is: %w", err)
		}
		d.hw = decodeValue(p.HW)
		return nil
	}
	log.Warn().Str("reason", why).Msg("database source: a row made no message; left unmarked")
	d.skipped[where] = true
	return nil
}

// document is a row as its script sees it: times in RFC 3339, bytes as
// text, NULL as null.
func document(row map[string]any) map[string]any {
	out := make(map[string]any, len(row))
	for k, v := range row {
		switch t := v.(type) {
		case time.Time:
			out[k] = t.Format(time.RFC3339Nano)
		case []byte:
			out[k] = string(t)
		default:
			out[k] = t
		}
	}
	return out
}

// encodeValue writes a row's value with its kind, so that it binds back
// as it was read: i: integer, f: float, t: time, b: bytes, s: text, n: NULL.
func encodeValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "n:"
	case int64:
		return "i:" + strconv.FormatInt(t, 10)
	case int32:
		return "i:" + strconv.FormatInt(int64(t), 10)
	case float64:
		return "f:" + strconv.FormatFloat(t, 'g', -1, 64)
	case time.Time:
		return "t:" + t.Format(time.RFC3339Nano)
	case []byte:
		return "b:" + base64.StdEncoding.EncodeToString(t)
	case bool:
		return "s:" + strconv.FormatBool(t)
	}
	return "s:" + fmt.Sprint(v)
}

func decodeValue(s string) any {
	kind, v, _ := strings.Cut(s, ":")
	switch kind {
	case "n":
		return nil
	case "i":
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	case "f":
		f, _ := strconv.ParseFloat(v, 64)
		return f
	case "t":
		t, _ := time.Parse(time.RFC3339Nano, v)
		return t
	case "b":
		b, _ := base64.StdEncoding.DecodeString(v)
		return b
	}
	return v
}

// startValue is high_water_start as a value: a whole number, a time
// (RFC 3339), or text.
func startValue(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return s
}

// dbReason is a database error without values: the server's code and the
// first line of its message, which names objects (a table, a column), not
// rows; a URL in it is redacted.
func dbReason(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("MySQL error %d (SQLSTATE %s)", me.Number, string(me.SQLState[:]))
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r := "PostgreSQL error " + pe.Code
		for _, kv := range [][2]string{{"table", pe.TableName}, {"column", pe.ColumnName}} {
			if kv[1] != "" {
				r += ", " + kv[0] + " " + kv[1]
			}
		}
		return r
	}
	msg := secret.Error(err).Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
