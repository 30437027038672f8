package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/admin"
)

// TestFileSourceCrashMidFile: serve, reading a 4,000-message batch file,
// is killed with SIGKILL part way and started again. The file is read
// again from where the store stopped: every message is stored once
// (HL7_IN holds 4,000), delivered (each control ID reaches the folder
// destination), and the file ends in done/. (The copies the killed broker
// was delivering come again after the queue's ack wait: the
// destination's timeout plus 5 s.)
func TestFileSourceCrashMidFile(t *testing.T) {
	skipUnlessFaultTests(t)
	const n = 4000
	root := t.TempDir()
	inbox, out := filepath.Join(root, "inbox"), filepath.Join(root, "out")
	require.NoError(t, os.MkdirAll(inbox, 0o755))
	adminAddr, viewer := freePort(t), writeToken(t, root, "vera")
	file := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s", tokens: [{name: vera, role: viewer, token_file: %s}]}
nats: {durability: fsync}
sources: [{name: drop, type: file, dir: "%s", poll: 50ms, stable_for: 0s}]
routes: [{name: all, to: [disk]}]
destinations: [{name: disk, type: file, dir: "%s", ordering: parallel, concurrency: 8, timeout: 2s}]
`, filepath.Join(root, "data"), adminAddr, viewer, inbox, out))

	serve := startServeProcess(t, file)
	defer func() { serve.kill() }()
	var b strings.Builder
	b.WriteString("FHS|^~\\&|REG\rBHS|^~\\&|REG\r")
	for i := range n {
		fmt.Fprintf(&b, "MSH|^~\\&|REG|H|EHR|H|20260114120000||ADT^A08^ADT_A01|K%05d|P|2.5.1\rPID|1||MRN%05d^^^H^MR||Crashfamily^Ann\r", i, i)
	}
	b.WriteString("BTS|4000\rFTS|1\r")
	require.NoError(t, os.WriteFile(filepath.Join(inbox, ".big.tmp"), []byte(b.String()), 0o644))
	require.NoError(t, os.Rename(filepath.Join(inbox, ".big.tmp"), filepath.Join(inbox, "big.hl7")))

	received := func() float64 { return metric(adminAddr, "hl7broker_received_total", `listener="drop"`) }
	require.Eventually(t, func() bool { return received() >= 800 }, 60*time.Second, 5*time.Millisecond, "waiting for 800 messages of the file to be received")
	serve.kill()
	_, err := os.Stat(filepath.Join(inbox, "big.hl7"))
	require.NoError(t, err, "killed mid-file: the file is still in the inbox")

	serve = startServeProcess(t, file)
	done := filepath.Join(root, "done", "big.hl7")
	require.Eventually(t, func() bool { _, err := os.Stat(done); return err == nil }, 120*time.Second, 50*time.Millisecond, "waiting for big.hl7 in done/")
	assert.Less(t, received(), float64(n), "the restarted broker resumed part way, not from the start")

	var st admin.Status
	out2, code := cli(t, "http://"+adminAddr, viewer, &st, "status")
	require.Equal(t, 0, code, out2)
	assert.EqualValues(t, n, st.Storage.Streams["HL7_IN"].Messages, "every message stored once")
	assert.Regexp(t, `^\S+ \(commit \S+.*, go1\.`, st.Version, "the status says which build answers")

	ids := map[string]int{}
	assert.Eventually(t, func() bool {
		entries, _ := os.ReadDir(out)
		clear(ids)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue // a temporary file the kill cut off (readers skip dot files)
			}
			// NNNNNNNNNN-K01234.hl7: the control ID after the sequence.
			if _, id, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".hl7"), "-"); ok {
				ids[id]++
			}
		}
		return len(ids) == n
	}, 90*time.Second, 100*time.Millisecond, "waiting for all %d control IDs in the destination folder", n)
	if len(ids) != n { // say where they are
		var now admin.Status
		cli(t, "http://"+adminAddr, viewer, &now, "status")
		t.Logf("%d of %d control IDs delivered; destinations: %+v", len(ids), n, now.Destinations)
	}
	dups := 0
	for _, c := range ids {
		dups += c - 1
	}
	assert.Zero(t, dups, "no message stored twice, so none delivered twice")
	serve.kill()
	assert.NotContains(t, serve.stderr.String(), "Crashfamily")
}
