package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/internal/testpg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A database source killed (SIGKILL) in the middle of 1,000 rows, then
// started again: every row's message is stored exactly once and every
// row is marked done.
func TestDatabaseSourceSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: serve as a process, killed")
	}
	pg := testpg.Start(t)
	pg.Exec("CREATE TABLE results (id int PRIMARY KEY, mrn text NOT NULL, value text, sent boolean NOT NULL DEFAULT false)")
	pg.Exec("INSERT INTO results (id, mrn, value) SELECT i, 'M' || i, (i % 97)::text FROM generate_series(1, 1000) i")
	dir := t.TempDir()
	victor := writeToken(t, dir, "victor")
	adminAddr := freePort(t)
	pwFile := filepath.Join(dir, "db.pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(testpg.Password), 0o600))
	cfg := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s", tokens: [{name: victor, role: viewer, token_file: %s}]}
history: {enabled: false}
sources:
  - name: legacy
    type: database
    driver: postgres
    url: "%s"
    password: "${file:%s}"
    query: "SELECT id, mrn, value FROM results WHERE NOT sent ORDER BY id"
    mark: "UPDATE results SET sent = true WHERE id = :id"
    interval: 50ms
    batch: 50
    script: "return 'MSH|^~\\\\&|LEGACY|LAB|BROKER|HOSP|20260114081530||ORU^R01^ORU_R01|R' + msg.id + '|P|2.5.1\\rPID|1||' + msg.mrn + '\\rOBX|1|NM|GLU||' + msg.value;"
`, filepath.Join(dir, "data"), adminAddr, victor, pg.URL(""), pwFile))
	stored := func() uint64 {
		var st admin.Status
		if _, code := cli(t, "http://"+adminAddr, victor, &st, "status"); code != 0 {
			return 0
		}
		return st.Storage.Streams["HL7_IN"].Messages
	}
	p := startServeProcess(t, cfg)
	testkit.WaitFor(t, 60*time.Second, func() error {
		if n := stored(); n < 300 {
			return fmt.Errorf("waiting for 300 rows stored before the kill: %d", n)
		}
		return nil
	})
	p.kill()
	before := pg.Count("SELECT count(*) FROM results WHERE sent")
	require.Less(t, before, 1000, "killed part way")

	p = startServeProcess(t, cfg)
	t.Cleanup(p.kill)
	testkit.WaitFor(t, 120*time.Second, func() error {
		if n := pg.Count("SELECT count(*) FROM results WHERE NOT sent"); n > 0 {
			return fmt.Errorf("%d rows not marked yet", n)
		}
		return nil
	})
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n := stored(); n != 1000 {
			return fmt.Errorf("%d messages stored, want 1000: none lost, none twice", n)
		}
		return nil
	})
	assert.NotContains(t, p.stderr.String(), testpg.Password)
}
