package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A migration of 10,000 messages, reconciled. The EMR is down for the
// first part of the import and then rejects the 25 messages whose control
// ID starts with R (dead-lettered); the listener refuses 20 ORU messages
// (it takes ADT) and import leaves out 5 it finds invalid. The
// reconciliation after the import accounts for every message: the totals
// add up, each delivered copy's SHA-256 is that of what the destination
// got (the archive's files, which a transform changed), and the report
// has a row per message and destination. After the EMR is fixed and the
// dead letters are replayed, import --reconcile finds every stored
// message delivered.
func TestImportReconciliation(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 messages through a broker")
	}
	dir := t.TempDir()
	victor, alice := writeToken(t, dir, "victor"), writeToken(t, dir, "alice")
	adminAddr, adtAddr, emrAddr := freePort(t), freePort(t), freePort(t)
	archive := filepath.Join(dir, "archive")
	stop, stderr := startServe(t, fmt.Sprintf(`
data_dir: %s
nats: {durability: os}
admin:
  addr: "%s"
  tokens:
    - {name: victor, role: viewer, token_file: %s}
    - {name: alice, role: operator, token_file: %s}
listeners: [{name: mig, addr: "%s", accept_types: [ADT]}]
routes:
  - {name: to-emr, to: [emr]}
  - {name: to-archive, to: [archive], transform: [{set: MSH-5, value: ARCHIVE}]}
destinations:
  - {name: emr, type: mllp, addr: "%s", retry: {backoff: [20ms, 100ms]}}
  - {name: archive, type: file, dir: "%s", file_name: "{seq}.{ext}", ordering: parallel, concurrency: 4}
`, filepath.Join(dir, "data"), adminAddr, victor, alice, adtAddr, emrAddr, archive))
	defer stop()

	// The files: 10,000 messages in two files.
	const n = 10000
	var files [2]strings.Builder
	for i := range n {
		id := fmt.Sprintf("M%05d", i)
		m := importMsg(id, "")
		switch {
		case i%400 == 7: // 25 the EMR will reject at first
			id = "R" + id[1:]
			m = importMsg(id, "")
		case i%500 == 11: // 20 the listener refuses
			m = strings.Replace(m, "ADT^A08^ADT_A01", "ORU^R01", 1)
		case i%2000 == 13: // 5 import finds invalid: no message type
			m = strings.Replace(m, "ADT^A08^ADT_A01", "", 1)
		}
		files[i*2/n].WriteString(m)
	}
	in := t.TempDir()
	names := []string{filepath.Join(in, "part1.hl7"), filepath.Join(in, "part2.hl7")}
	for i, name := range names {
		require.NoError(t, os.WriteFile(name, []byte(files[i].String()), 0o644))
	}

	// The EMR comes up once the import is under way.
	var rejecting atomic.Bool
	rejecting.Store(true)
	var emrMu sync.Mutex
	emrGot := map[string]int{}
	emr := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		m, err := hl7.Parse(frame)
		if err != nil {
			return nil
		}
		if rejecting.Load() && strings.HasPrefix(m.ControlID(), "R") {
			return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: hl7.AckModeOriginal, Text: "unknown patient"})
		}
		emrMu.Lock()
		emrGot[m.ControlID()]++
		emrMu.Unlock()
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Accepted, Mode: hl7.AckModeOriginal})
	})}
	t.Cleanup(func() { _ = emr.Shutdown(context.Background()) })
	base := "http://" + adminAddr
	imported := make(chan struct{})
	var stdout, errOut string
	var code int
	report := filepath.Join(t.TempDir(), "reconciliation.csv")
	go func() {
		defer close(imported)
		stdout, errOut, code = runCmd(t, append([]string{"import", "--to", adtAddr, "--state", filepath.Join(dir, "state"), "--progress", "0",
			"--reconciliation", report, "--server", base, "--api-token-file", victor, "--settle", "2m"}, names...)...)
	}()
	require.Eventually(t, func() bool {
		var st admin.Status
		if _, code := cli(t, base, victor, &st, "status"); code != 0 || len(st.Listeners) == 0 {
			return false
		}
		return st.Listeners[0].Received >= 3000
	}, 60*time.Second, 50*time.Millisecond, "waiting for the import to be under way")
	ln, err := net.Listen("tcp", emrAddr)
	require.NoError(t, err, "the EMR's port")
	go func() { _ = emr.Serve(ln) }()
	select {
	case <-imported:
	case <-time.After(4 * time.Minute):
		t.Fatalf("the import did not finish; stderr: %s", stderr.String())
	}
	t.Logf("import:\n%s%s", stdout, errOut)
	assert.Equal(t, 1, code, "messages refused and invalid: exit 1")
	assert.Contains(t, stdout, "reconciliation: in 10000 = stored 9975 + not stored 25 (invalid, not sent 5; refused by the broker 20; not found 0)")
	assert.Contains(t, stdout, "stored 9975: no route matched 0, filtered 0, not routed yet 0")
	assert.Contains(t, stdout, "destination emr: copies 9975 = delivered 9950 + dead-lettered 25 + queued or retrying 0 + purged or other 0")
	assert.Contains(t, stdout, "destination archive: copies 9975 = delivered 9975 + dead-lettered 0 + queued or retrying 0 + purged or other 0 (delivered as other bytes than the input's: 9975")
	assert.Contains(t, stdout, "the totals add up")
	for _, phi := range []string{"Qwertyson", "MRNM0"} {
		assert.NotContains(t, stdout+errOut, phi, "no field value in the summary")
	}

	// The report: a row per message and destination; the archive's
	// SHA-256 is that of its file.
	rows := readCSV(t, report)
	require.Equal(t, reconcileHeader, rows[0])
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	byOutcome, archived := map[string]int{}, map[string]string{} // message id -> received_sha256
	for _, r := range rows[1:] {
		byOutcome[r[col["outcome"]]+"/"+r[col["destination"]]+"/"+r[col["status"]]]++
		if r[col["destination"]] == "archive" {
			archived[r[col["message_id"]]] = r[col["received_sha256"]]
			assert.Equal(t, "false", r[col["received_as_sent"]], "the archive's copy was changed by a transform")
		}
		if r[col["destination"]] == "emr" && r[col["status"]] == "delivered" {
			assert.Equal(t, r[col["sha256"]], r[col["received_sha256"]], "the EMR got the message as sent")
		}
		if r[col["outcome"]] == "refused" {
			assert.True(t, strings.HasPrefix(r[col["detail"]], "AR "), "the broker's refusal: %v", r)
		}
	}
	assert.Equal(t, map[string]int{"stored/emr/delivered": 9950, "stored/emr/dead_lettered": 25, "stored/archive/delivered": 9975,
		"refused//": 20, "invalid//": 5}, byOutcome)
	entries, err := os.ReadDir(archive)
	require.NoError(t, err)
	require.Len(t, entries, 9975)
	for _, e := range entries[:50] {
		b, err := os.ReadFile(filepath.Join(archive, e.Name()))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		id := strings.TrimLeft(strings.TrimSuffix(e.Name(), ".hl7"), "0")
		assert.Equal(t, hex.EncodeToString(sum[:]), archived[id], "the archive's file %s is what the reconciliation says it received", e.Name())
	}

	// Fixed and replayed: every stored message delivered.
	rejecting.Store(false)
	out, code := cli(t, base, alice, nil, "dlq", "replay", "--all")
	require.Equal(t, 0, code, out)
	var page struct{ Items []struct{ ID string } }
	require.Eventually(t, func() bool {
		_, code := cli(t, base, victor, &page, "messages", "search", "--destination", "emr", "--status", "dead_lettered")
		return code == 0 && len(page.Items) == 0
	}, 30*time.Second, 50*time.Millisecond, "waiting for the index to see the dead letters replayed: %+v", &page)
	recheck := filepath.Join(t.TempDir(), "recheck.csv")
	stdout, errOut, code = runCmd(t, append([]string{"import", "--reconcile", "--reconciliation", recheck, "--server", base, "--api-token-file", victor,
		"--settle", "1m", "--progress", "0"}, names...)...)
	t.Logf("reconcile:\n%s%s", stdout, errOut)
	assert.Equal(t, 1, code, "still: the refused and invalid ones were never stored")
	assert.Contains(t, stdout, "destination emr: copies 9975 = delivered 9975 + dead-lettered 0")
	assert.Contains(t, stdout, "the totals add up")
	emrMu.Lock()
	assert.Len(t, emrGot, 9975, "the EMR has every stored message")
	emrMu.Unlock()

	// Each question is in the audit trail; a digest that is not one is a 400.
	var trail struct {
		Items []struct{ Action, User string }
	}
	out, code = cli(t, base, alice, &trail, "audit", "--action", "message.reconcile", "--limit", "100")
	require.Equal(t, 0, code, out)
	assert.GreaterOrEqual(t, len(trail.Items), 20, "10 questions of 1,000 a run, twice")
	assert.Equal(t, "victor", trail.Items[0].User)
	req, _ := http.NewRequest("POST", base+"/api/v1/reconcile", strings.NewReader(`{"messages":[{"control_id":"M1","sha256":"xyz"}]}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(readFile(t, victor))))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

var reconcileHeader = []string{"file", "position", "control_id", "sha256", "outcome", "detail", "message_id", "later_messages",
	"destination", "status", "via_message", "code", "attempts", "reason", "received_sha256", "received_as_sent"}

func readCSV(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}
