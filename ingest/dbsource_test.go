package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/internal/testmysql"
	"github.com/hl7broker/hl7broker/internal/testpg"
	"github.com/hl7broker/hl7broker/script"
	"github.com/hl7broker/hl7broker/store"
)

// rowScript builds an ORU of a result row.
const rowScript = `if (msg.value === 'bad') { throw new Error('bad value'); }
return 'MSH|^~\\&|LEGACY|LAB|BROKER|HOSP|20260114081530||ORU^R01^ORU_R01|R' + msg.id + '|P|2.5.1\r' +
  'PID|1||' + msg.mrn + '^^^HOSP^MR\rOBR|1||' + msg.id + '\rOBX|1|NM|GLU^Glucose||' + msg.value + '|mmol/L|||||F';`

// dbSource is a database source over n, polling every 20 ms.
func dbSource(t *testing.T, n *store.NATS, o DatabaseOptions) *DatabaseSource {
	t.Helper()
	e, err := script.NewEngine(script.Options{})
	require.NoError(t, err)
	sc, err := e.Compile("row.js", script.Builder, rowScript, false)
	require.NoError(t, err)
	cfg := config.SourceConfig{Name: "legacy", Type: "database", MaxMessageBytes: config.DefaultMaxMessageBytes, Options: &o}
	config.SourceTypeDefaults(&cfg)
	o = *config.SourceOptionsOf[DatabaseOptions](cfg)
	o.Interval = 20 * time.Millisecond
	in := New(cfg.Listener(), n.BatchCommitter(5*time.Second), zerolog.Nop())
	src, err := newDatabaseSource(&o, cfg, SourceEnv{Ingest: in, Builder: &Builder{Script: sc}, Rows: n, Sync: n.Sync, Log: zerolog.Nop()})
	require.NoError(t, err)
	return src
}

// run runs src until the test ends or stop is called.
func run(t *testing.T, src *DatabaseSource) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func waitStored(t *testing.T, n *store.NATS, want uint64, what string) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := streamCount(t, n); got != want {
			return fmt.Errorf("%s: %d stored, want %d", what, got, want)
		}
		return nil
	})
}

// PostgreSQL, high-water: rows inserted while the source runs arrive once
// each; a source started again resumes after the last one stored; the
// database down is waited out with a backoff, then caught up.
func TestDatabaseSourceHighWaterOnPostgres(t *testing.T) {
	srv := testpg.Start(t)
	srv.Exec("CREATE TABLE results (id bigserial PRIMARY KEY, mrn text NOT NULL, value text)")
	n := openStore(t)
	o := DatabaseOptions{Driver: "postgres", URL: srv.URL(""), Password: testpg.Password, HighWater: "id",
		Query: "SELECT id, mrn, value FROM results WHERE id > $1 ORDER BY id"}
	srv.Exec("INSERT INTO results (mrn, value) VALUES ('M1', '5.4'), ('M2', '6.1'), ('M3', '4.9')")
	first := dbSource(t, n, o)
	var logged syncbuf.Buffer
	first.Log = zerolog.New(&logged)
	stop := run(t, first)
	waitStored(t, n, 3, "the rows there at the start")
	srv.Exec("INSERT INTO results (mrn, value) VALUES ('M4', '5.0'), ('M5', '5.2'), ('MX', 'bad')")
	waitStored(t, n, 5, "rows inserted while it runs")
	srv.Exec("INSERT INTO results (mrn, value) VALUES ('M5b', '5.3')")
	waitStored(t, n, 6, "past the row its script throws on")
	require.Equal(t, 1, strings.Count(logged.String(), "a row made no message"), "that row passed once, not tried at every poll: %s", logged.String())
	require.NotContains(t, logged.String(), `"row"`, "no value of the row (its place) in the log")
	stop()

	srv.Exec("INSERT INTO results (mrn, value) VALUES ('M6', '7.0')")
	src := dbSource(t, n, o)
	run(t, src)
	waitStored(t, n, 7, "started again: only the new row")

	srv.Stop()
	testkit.WaitFor(t, 20*time.Second, func() error {
		if src.Problem() == "" {
			return fmt.Errorf("waiting for the source to say the database is down")
		}
		return nil
	})
	srv.Restart()
	srv.Exec("INSERT INTO results (mrn, value) VALUES ('M7', '7.1'), ('M8', '7.2')")
	waitStored(t, n, 9, "caught up once the database is back")
	testkit.WaitFor(t, 10*time.Second, func() error {
		if p := src.Problem(); p != "" {
			return fmt.Errorf("the source still says %q", p)
		}
		return nil
	})
}

// MariaDB, mark: a crash after a row's message is stored and before the
// row is marked: started again, the source marks it and stores nothing
// twice.
func TestDatabaseSourceMarkSurvivesACrashOnMariaDB(t *testing.T) {
	srv := testmysql.Start(t)
	srv.Exec("CREATE TABLE hl7.results (id INT PRIMARY KEY, mrn VARCHAR(20), value VARCHAR(20), sent TINYINT NOT NULL DEFAULT 0)",
		"INSERT INTO hl7.results (id, mrn, value) VALUES (1, 'M1', '5.4'), (2, 'M2', '6.1'), (3, 'M3', '4.9')")
	n := openStore(t)
	o := DatabaseOptions{Driver: "mysql", URL: srv.URL(), Password: testmysql.Password,
		Query: "SELECT id, mrn, value FROM results WHERE sent = 0 ORDER BY id", Mark: "UPDATE results SET sent = 1 WHERE id = :id"}
	src := dbSource(t, n, o)
	ctx, cancel := context.WithCancel(context.Background())
	src.afterStore = func(string) error { cancel(); return context.Canceled } // killed between storing and marking
	require.NoError(t, src.Run(ctx))
	require.EqualValues(t, 1, streamCount(t, n), "the first row's message was stored")
	var unsent int
	require.NoError(t, srv.DB().QueryRow("SELECT COUNT(*) FROM results WHERE sent = 0").Scan(&unsent))
	require.Equal(t, 3, unsent, "and its row not marked")

	run(t, dbSource(t, n, o))
	waitStored(t, n, 3, "started again: the other two rows, the first not twice")
	testkit.WaitFor(t, 10*time.Second, func() error {
		require.NoError(t, srv.DB().QueryRow("SELECT COUNT(*) FROM results WHERE sent = 0").Scan(&unsent))
		if unsent != 0 {
			return fmt.Errorf("%d rows not marked yet", unsent)
		}
		return nil
	})
	require.EqualValues(t, 3, streamCount(t, n), "still three")
}

func openStore(t *testing.T) *store.NATS {
	t.Helper()
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}
