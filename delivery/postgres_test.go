package delivery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testpg"
	"github.com/hl7broker/hl7broker/internal/testpki"
)

// A lab result with three OBX: a number with a zoned time, one with a
// zoneless time, one with no value (NULL). Its values must never appear in
// a reason.
const pgORU = "MSH|^~\\&|LAB|F|EHR|H|20260114081500||ORU^R01|CTRL-9|P|2.5\r" +
	"PID|1||MRN777^^^HOSP||SECRETFAMILY^Ann\r" +
	"OBR|1|||GLU^Glucose\r" +
	"OBX|1|NM|GLU^Glucose||5.4|mmol/L|||||F|||20260114081530-0500\r" +
	"OBX|2|NM|K^Potassium||+4.10|mmol/L|||||F|||202601140816\r" +
	"OBX|3|NM|NA^Sodium||\"\"|mmol/L|||||F\r"

const pgObsTable = `CREATE TABLE lab.obs (
	message_id text NOT NULL, row_no int NOT NULL, mrn text, family text, code text,
	value numeric CHECK (value >= 0), observed_at timestamptz, observed_local timestamp,
	in_seq bigint, control_id text, raw text, doc jsonb,
	PRIMARY KEY (message_id, row_no))`

func pgDest(srv *testpg.Server) config.DestinationConfig {
	return config.DestinationConfig{Name: "warehouse", Type: "postgres", TimeZone: "America/Chicago", Timeout: 10 * time.Second,
		Options: &PostgresOptions{URL: srv.URL(""), Password: testpg.Password, Table: "lab.obs", RowPer: "OBX", Columns: map[string]string{"message_id": "$message_id", "row_no": "$row", "mrn": "PID-3.1", "family": "PID-5.1",
			"code": "OBX-3.1", "value": "OBX-5", "observed_at": "OBX-14", "observed_local": "OBX-14",
			"in_seq": "$in_seq", "control_id": "$control_id", "raw": "$message", "doc": "$json"}}}
}

func pgOpts(d config.DestinationConfig) *PostgresOptions { return config.OptionsOf[PostgresOptions](d) }

func pgMessage(data string) Message {
	return Message{Data: []byte(data), ControlID: "CTRL-9", InSeq: 41, ReceivedAt: time.Date(2026, 1, 14, 13, 15, 31, 0, time.UTC)}
}

// A row per OBX, typed by the table's columns, in one transaction; a
// retry (the same message again) adds nothing.
func TestPostgresInsertsARowPerSegmentTypedAndOnce(t *testing.T) {
	srv := testpg.Start(t)
	srv.Exec("CREATE SCHEMA lab; " + pgObsTable)
	d, err := New(pgDest(srv), nil)
	require.NoError(t, err)
	defer d.Close()

	res := d.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	assert.Equal(t, "INSERT 3", res.Code)
	id := "41-20260114T131531.000000000Z"
	assert.Equal(t, 3, srv.Count("SELECT count(*) FROM lab.obs WHERE message_id = $1 AND mrn = 'MRN777' AND family = 'SECRETFAMILY' AND in_seq = 41 AND control_id = 'CTRL-9'", id))
	// Numbers: 5.4 and +4.10; "" is NULL.
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM lab.obs WHERE row_no = 1 AND value = 5.4 AND code = 'GLU'"))
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM lab.obs WHERE row_no = 2 AND value = 4.10"))
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM lab.obs WHERE row_no = 3 AND value IS NULL AND observed_at IS NULL"))
	// A zoned time keeps its zone; a zoneless one is read in time_zone
	// (Chicago, -06:00 in January); a timestamp column keeps the clock.
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM lab.obs WHERE row_no = 1 AND observed_at = '2026-01-14 13:15:30+00' AND observed_local = '2026-01-14 08:15:30'"))
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM lab.obs WHERE row_no = 2 AND observed_at = '2026-01-14 14:16:00+00' AND observed_local = '2026-01-14 08:16:00'"))
	// $message is the ER7, $json the JSON mapping.
	assert.Equal(t, 3, srv.Count("SELECT count(*) FROM lab.obs WHERE raw LIKE 'MSH|%' AND doc IS NOT NULL"))

	again := d.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Delivered, again.Outcome, again.Reason)
	assert.Equal(t, "INSERT 0", again.Code)
	assert.Equal(t, 3, srv.Count("SELECT count(*) FROM lab.obs"))

	// A message without OBX has no row, and is delivered.
	none := d.Deliver(context.Background(), Message{Data: []byte(oru), InSeq: 42})
	assert.Equal(t, Delivered, none.Outcome)
	assert.Equal(t, "INSERT 0", none.Code)
}

// What will never succeed is rejected, in one transaction (no row of the
// message is left), with the database's code and constraint, or the
// column and path, and never a value.
func TestPostgresRejectsWhatWillNeverSucceed(t *testing.T) {
	srv := testpg.Start(t)
	srv.Exec("CREATE SCHEMA lab; " + pgObsTable)
	d, err := New(pgDest(srv), nil)
	require.NoError(t, err)
	defer d.Close()

	negative := strings.Replace(pgORU, "+4.10", "-4.10", 1)
	res := d.Deliver(context.Background(), pgMessage(negative))
	require.Equal(t, Rejected, res.Outcome, res.Reason)
	assert.Contains(t, res.Reason, "23514 (check_violation)")
	assert.Contains(t, res.Reason, "constraint obs_value_check")
	assert.Equal(t, 0, srv.Count("SELECT count(*) FROM lab.obs"), "the message's first row was rolled back")

	for _, bad := range []struct{ from, to, reason string }{
		{"+4.10", "4,1 high", "column value: OBX-5 is not a number"},
		{"202601140816", "yesterday", "column observed_at: OBX-14 is not an HL7 date/time"},
	} {
		res := d.Deliver(context.Background(), pgMessage(strings.Replace(pgORU, bad.from, bad.to, 1)))
		require.Equal(t, Rejected, res.Outcome, res.Reason)
		assert.Contains(t, res.Reason, bad.reason)
		assert.NotContains(t, res.Reason, bad.to)
	}
	for _, r := range []string{res.Reason} {
		for _, phi := range []string{"SECRETFAMILY", "MRN777", "-4.10"} {
			assert.NotContains(t, r, phi)
		}
	}
}

// A database that is down is retried, and the message goes in once it is
// back; a table without the unique index is retried with the fix named.
func TestPostgresRetriesWhileTheDatabaseIsDownOrUnfit(t *testing.T) {
	srv := testpg.Start(t)
	srv.Exec("CREATE SCHEMA lab; CREATE TABLE lab.obs (message_id text, row_no int, value text)")
	dc := pgDest(srv)
	pgOpts(dc).Columns = map[string]string{"message_id": "$message_id", "row_no": "$row", "value": "OBX-5"}
	dc.Timeout = 3 * time.Second
	d, err := New(dc, nil)
	require.NoError(t, err)
	defer d.Close()

	res := d.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Retry, res.Outcome, res.Reason)
	assert.Contains(t, res.Reason, "42P10")
	assert.Contains(t, res.Reason, "unique index")
	srv.Exec("ALTER TABLE lab.obs ADD PRIMARY KEY (message_id, row_no)")
	res = d.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Delivered, res.Outcome, res.Reason)

	srv.Stop()
	down := d.Deliver(context.Background(), pgMessage(strings.Replace(pgORU, "CTRL-9", "CTRL-10", 1)))
	require.Equal(t, Retry, down.Outcome, down.Reason)
	assert.NotContains(t, down.Reason, testpg.Password)
	srv.Restart()
	next := pgMessage(pgORU)
	next.InSeq = 43
	res = d.Deliver(context.Background(), next)
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	assert.Equal(t, 6, srv.Count("SELECT count(*) FROM lab.obs"))
}

// BenchmarkPostgresDeliver: one ORU with three OBX, three rows in one
// transaction, per delivery, to a real PostgreSQL on this machine (started
// with fsync off: it measures the destination, not the disk).
func BenchmarkPostgresDeliver(b *testing.B) {
	srv := testpg.Start(b)
	srv.Exec("CREATE SCHEMA lab; " + pgObsTable)
	d, err := New(pgDest(srv), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	msg := pgMessage(pgORU)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg.InSeq = uint64(i + 1)
		if res := d.Deliver(context.Background(), msg); res.Outcome != Delivered || res.Code != "INSERT 3" {
			b.Fatalf("%v %s %s", res.Outcome, res.Code, res.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// A value the database cannot read as its column's type is rejected,
// without the value (PostgreSQL does not say which parameter: the reason
// names the code). A value the driver itself cannot encode (out of a
// smallint's range) is rejected naming the column, without the value.
func TestPostgresValueErrorsNeverQuoteTheValue(t *testing.T) {
	srv := testpg.Start(t)
	srv.Exec("CREATE TABLE ids (message_id text PRIMARY KEY, ref uuid, small smallint)")
	dc := pgDest(srv)
	o := pgOpts(dc)
	o.Table, o.RowPer = "ids", ""
	pgOpts(dc).Columns = map[string]string{"message_id": "$message_id", "ref": "PID-5.1"}
	d, err := New(dc, nil)
	require.NoError(t, err)
	res := d.Deliver(context.Background(), pgMessage(pgORU))
	d.Close()
	require.Equal(t, Rejected, res.Outcome, res.Reason)
	assert.Contains(t, res.Reason, "22P02 (invalid_text_representation)")
	assert.NotContains(t, res.Reason, "SECRETFAMILY")

	pgOpts(dc).Columns = map[string]string{"message_id": "$message_id", "small": "$in_seq"}
	d, err = New(dc, nil)
	require.NoError(t, err)
	defer d.Close()
	msg := pgMessage(pgORU)
	msg.InSeq = 70001
	res = d.Deliver(context.Background(), msg)
	require.Equal(t, Rejected, res.Outcome, res.Reason)
	assert.Contains(t, res.Reason, "the value for column small cannot be encoded")
	assert.NotContains(t, res.Reason, "70001")
}

// With tls.ca_file, the destination connects over TLS and checks the
// server's certificate against that CA; a CA that did not sign it is
// refused (retried: nothing is lost while the admin fixes it).
func TestPostgresOverTLS(t *testing.T) {
	srv := testpg.Start(t)
	pki := testpki.New(t)
	srv.EnableTLS(pki.ServerCert, pki.ServerKey)
	srv.Exec("CREATE TABLE notes (message_id text PRIMARY KEY, control_id text)")
	dc := pgDest(srv)
	pgOpts(dc).URL = strings.Replace(srv.URL(""), "sslmode=disable", "sslmode=verify-full", 1)
	o := pgOpts(dc)
	o.Table, o.RowPer = "notes", ""
	pgOpts(dc).Columns = map[string]string{"message_id": "$message_id", "control_id": "$control_id"}
	dc.TLS.CAFile = pki.CAFile
	d, err := New(dc, nil)
	require.NoError(t, err)
	defer d.Close()
	res := d.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	assert.Equal(t, 1, srv.Count("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.usename = 'hl7'"),
		"the destination's connection is the one over TLS")

	other := testpki.New(t)
	dc.TLS.CAFile = other.CAFile
	d2, err := New(dc, nil)
	require.NoError(t, err)
	defer d2.Close()
	res = d2.Deliver(context.Background(), pgMessage(pgORU))
	require.Equal(t, Retry, res.Outcome)
	assert.Contains(t, res.Reason, "certificate")
}
