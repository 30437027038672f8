package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testpg"
)

// labORU is a result with n OBX; value is OBX 1's value.
func labORU(id, value string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MSH|^~\\&|LAB|F|EHR|H|20260114081500||ORU^R01|%s|P|2.5\rPID|1||MRN-%s^^^HOSP||PGFAMILY^Ann\r", id, id)
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("%d.5", i)
		if i == 1 {
			v = value
		}
		fmt.Fprintf(&b, "OBX|%d|NM|C%d^Code||%s|mg/dL|||||F|||20260114081530-0500\r", i, i, v)
	}
	return b.String()
}

// TestServePostgresEndToEnd: MLLP in, a row per OBX in a real
// PostgreSQL; the database stopped and started again loses nothing; a
// row that breaks a constraint goes to the dead-letter queue with the
// constraint's name; no value reaches the log.
func TestServePostgresEndToEnd(t *testing.T) {
	skipUnlessFaultTests(t)
	pg := testpg.Start(t)
	pg.Exec(`CREATE TABLE results (message_id text, obx int, mrn text, value numeric CHECK (value >= 0),
		observed_at timestamptz, PRIMARY KEY (message_id, obx))`)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(testpg.Password+"\n"), 0o600))
	in, admin := freePort(t), freePort(t)
	tokens := t.TempDir()
	viewer, operator := writeToken(t, tokens, "vera"), writeToken(t, tokens, "olga")
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s", tokens: [{name: vera, role: viewer, token_file: %s}, {name: olga, role: operator, token_file: %s}]}
listeners: [{name: lab, addr: "%s"}]
routes: [{name: results, to: [warehouse]}]
destinations:
  - name: warehouse
    type: postgres
    url: "%s"
    password: "${file:%s}"
    table: results
    row_per: OBX
    columns: {message_id: $message_id, obx: $row, mrn: PID-3.1, value: OBX-5, observed_at: OBX-14}
    timeout: 3s
    retry: {max_attempts: 1000, backoff: [100ms]}
history: {enabled: true}
`, t.TempDir(), admin, viewer, operator, in, pg.URL(""), pwFile)
	stop, stderr := startServe(t, cfg)
	send := func(msg string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "m.hl7")
		require.NoError(t, os.WriteFile(f, []byte(msg), 0o644))
		out, errOut, code := runCmd(t, "send", "--addr", in, f)
		require.Equal(t, 0, code, "%s%s", out, errOut)
	}
	rows := func() int { return pg.Count("SELECT count(*) FROM results") }

	send(labORU("R1", "7.25", 3))
	require.Eventually(t, func() bool { return rows() == 3 }, 20*time.Second, 20*time.Millisecond, "waiting for 3 rows; stderr: %s", stderr)
	assert.Equal(t, 3, pg.Count("SELECT count(*) FROM results WHERE mrn = 'MRN-R1' AND observed_at = '2026-01-14 13:15:30+00'"))

	// The message's page shows the row values as inserted and the
	// database's answer, to a role that may see content.
	var found struct{ Items []struct{ ID string } }
	require.Eventually(t, func() bool {
		_, code := cli(t, "http://"+admin, operator, &found, "messages", "search", "--control-id", "R1")
		return code == 0 && len(found.Items) == 1
	}, 10*time.Second, 50*time.Millisecond, "waiting for R1 in the history")
	var page struct {
		Copies []struct{ Destination, Status, Sent, Response string }
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, "http://"+admin, operator, &page, "messages", "show", found.Items[0].ID)
		return code == 0 && len(page.Copies) == 1 && page.Copies[0].Response != ""
	}, 10*time.Second, 50*time.Millisecond, "waiting for R1's copy to be recorded as sent: %+v", &page)
	assert.Equal(t, "INSERT 3", page.Copies[0].Response)
	var sent struct {
		Table string
		Rows  []map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(page.Copies[0].Sent), &sent), page.Copies[0].Sent)
	assert.Equal(t, `"results"`, sent.Table)
	require.Len(t, sent.Rows, 3)
	assert.Equal(t, "MRN-R1", sent.Rows[0]["mrn"])
	assert.EqualValues(t, 2, sent.Rows[1]["obx"])

	// The database goes down: the message is acknowledged (it is stored),
	// retried, and inserted once the database is back.
	pg.Stop()
	send(labORU("R2", "1.0", 2))
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_retried_total", `destination="warehouse"`) >= 2 },
		20*time.Second, 20*time.Millisecond, "waiting for retries while the database is down")
	pg.Restart()
	require.Eventually(t, func() bool { return rows() == 5 }, 30*time.Second, 50*time.Millisecond, "waiting for R2's 2 rows after the restart; stderr: %s", stderr)

	// A value the table's CHECK refuses: dead-lettered, nothing inserted.
	send(labORU("R3", "-3.75", 2))
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_dead_lettered_total", `destination="warehouse"`) == 1 },
		20*time.Second, 20*time.Millisecond, "waiting for the dead letter; stderr: %s", stderr)
	assert.Equal(t, 5, rows(), "R3's transaction inserted nothing")
	var out string
	require.Eventually(t, func() bool { // the history indexes it a moment later
		out, _ = cli(t, "http://"+admin, viewer, nil, "dlq", "list", "--destination", "warehouse")
		return strings.Contains(out, "R3")
	}, 10*time.Second, 50*time.Millisecond, "waiting for the dead letter in dlq list")
	assert.Contains(t, out, "23514 (check_violation), table results, constraint results_value_check")

	assert.Equal(t, 0, stop(), "stderr: %s", stderr.String())
	for _, phi := range []string{"PGFAMILY", "MRN-R", "-3.75", testpg.Password} {
		assert.NotContains(t, stderr.String(), phi)
	}
}
