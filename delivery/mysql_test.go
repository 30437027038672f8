package delivery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testmysql"
)

const myObsTable = "CREATE TABLE hl7.obs (" +
	"message_id VARCHAR(80) NOT NULL, row_no INT NOT NULL, mrn VARCHAR(12), family VARCHAR(100), code VARCHAR(20)," +
	"value DECIMAL(10,2), observed_at TIMESTAMP NULL, observed_local DATETIME NULL, status CHAR(1)," +
	"PRIMARY KEY (message_id, row_no), CONSTRAINT status_known CHECK (status IN ('F','P','C')), UNIQUE KEY one_code_per_mrn (mrn, code, observed_local))"

func myDest(srv *testmysql.Server) config.DestinationConfig {
	return config.DestinationConfig{Name: "warehouse", Type: "mysql", TimeZone: "America/Chicago", Timeout: 10 * time.Second,
		Options: &MySQLOptions{URL: srv.URL(), Password: testmysql.Password, Table: "obs", RowPer: "OBX", Columns: map[string]string{
			"message_id": "$message_id", "row_no": "$row", "mrn": "PID-3.1", "family": "PID-5.1", "code": "OBX-3.1", "value": "OBX-5",
			"observed_at": "OBX-14", "observed_local": "OBX-14", "status": "OBX-11"}}}
}

// Rows per OBX, typed by the table, in one transaction, once: a retry or
// replay adds nothing; values shaped like SQL are stored as values; a
// constraint, a unique index other than the message's and a value too
// long are dead letters that name the constraint, index or column, never
// a value.
func TestMySQLInsertsTypedOnceAndRejectsByName(t *testing.T) {
	srv := testmysql.Start(t)
	srv.Exec(myObsTable)
	d, err := New(myDest(srv), nil)
	require.NoError(t, err)
	defer d.Close()
	ctx := context.Background()
	msg := pgMessage(strings.Replace(pgORU, "SECRETFAMILY", "O'Hara'); DROP TABLE obs; --", 1))
	res := d.Deliver(ctx, msg)
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	assert.Equal(t, "INSERT 3", res.Code)
	res = d.Deliver(ctx, msg)
	require.Equal(t, Delivered, res.Outcome, "a retry of the same message: %s", res.Reason)
	assert.Equal(t, "INSERT 0", res.Code, "nothing added twice")

	db := srv.DB()
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM obs").Scan(&n))
	assert.Equal(t, 3, n)
	var family, value string
	var at, local time.Time
	require.NoError(t, db.QueryRow("SELECT family, value, observed_at, observed_local FROM obs WHERE row_no = 1").Scan(&family, &value, &at, &local))
	assert.Equal(t, "O'Hara'); DROP TABLE obs; --", family, "stored as a value")
	assert.Equal(t, "5.40", value)
	assert.Equal(t, time.Date(2026, 1, 14, 13, 15, 30, 0, time.UTC), at.UTC(), "TIMESTAMP: the instant, its zone applied")
	assert.Equal(t, time.Date(2026, 1, 14, 8, 15, 30, 0, time.UTC), local, "DATETIME: the clock as written")
	var null *string
	require.NoError(t, db.QueryRow("SELECT value FROM obs WHERE row_no = 3").Scan(&null))
	assert.Nil(t, null, `"" is NULL`)

	for _, c := range []struct{ what, msg, want string }{
		{"check constraint", strings.Replace(pgORU, "|||||F|||20260114081530", "|||||X|||20260114081530", 1), "constraint status_known"},
		{"another unique index", strings.Replace(pgORU, "CTRL-9", "CTRL-10", 1), "key one_code_per_mrn"},
		{"too long", strings.Replace(pgORU, "MRN777", "MRN777777777777777", 1), "column mrn"},
	} {
		m := pgMessage(c.msg)
		m.InSeq = 99 + uint64(len(c.what))
		res := d.Deliver(ctx, m)
		assert.Equal(t, Rejected, res.Outcome, c.what)
		assert.Contains(t, res.Reason, c.want, c.what)
		for _, value := range []string{"SECRETFAMILY", "MRN777", "'X'"} {
			assert.NotContains(t, res.Reason, value, c.what)
		}
	}
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM obs").Scan(&n))
	assert.Equal(t, 3, n, "a rejected message adds no row: all or nothing")

	bad := pgMessage(strings.Replace(pgORU, "||5.4|", "||five|", 1))
	bad.InSeq = 7
	res = d.Deliver(ctx, bad)
	assert.Equal(t, Rejected, res.Outcome)
	assert.Equal(t, "column value: OBX-5 is not a number", res.Reason)
}

// A table without a unique index on the $message_id column is retried
// (an admin adds one), and so is a database that is down.
func TestMySQLWithoutAKeyOrServerIsRetried(t *testing.T) {
	srv := testmysql.Start(t)
	srv.Exec("CREATE TABLE hl7.obs (message_id VARCHAR(80), row_no INT, mrn VARCHAR(12), family VARCHAR(100), code VARCHAR(20), value DECIMAL(10,2), observed_at TIMESTAMP NULL, observed_local DATETIME NULL, status CHAR(1))")
	d, err := New(myDest(srv), nil)
	require.NoError(t, err)
	defer d.Close()
	res := d.Deliver(context.Background(), pgMessage(pgORU))
	assert.Equal(t, Retry, res.Outcome)
	assert.Contains(t, res.Reason, "needs a unique index on the $message_id column")

	down := myDest(srv)
	config.OptionsOf[MySQLOptions](down).URL = "mysql://hl7@127.0.0.1:9/hl7"
	d2, err := New(down, nil)
	require.NoError(t, err)
	defer d2.Close()
	res = d2.Deliver(context.Background(), pgMessage(pgORU))
	assert.Equal(t, Retry, res.Outcome, res.Reason)
}
