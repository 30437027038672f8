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

	"github.com/hl7broker/hl7broker/internal/testsshd"
)

// TestServeSFTPEndToEnd: a lab drops a batch on an SFTP server; serve's
// sftp source reads it, and an sftp destination writes each message to
// another server's folder. The destination's server goes down and comes
// back: the messages wait and arrive, none lost, in order.
func TestServeSFTPEndToEnd(t *testing.T) {
	skipUnlessFaultTests(t)
	lab, emr := testsshd.Start(t), testsshd.Start(t)
	outbound, inbound := filepath.Join(lab.Dir, "outbound"), filepath.Join(emr.Dir, "inbound")
	require.NoError(t, os.MkdirAll(outbound, 0o755))
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
sources:
  - {name: labsftp, type: sftp, addr: "%s", user: %s, private_key_file: "%s", known_hosts: "%s", dir: "%s", poll: 50ms, stable_for: 0s}
routes: [{name: lab-to-emr, from: [labsftp], to: [emrsftp]}]
destinations:
  - {name: emrsftp, type: sftp, addr: "%s", user: %s, private_key_file: "%s", known_hosts: "%s", dir: "%s",
     file_name: "{seq}_{control_id}.{ext}", timeout: 3s, retry: {max_attempts: 1000, backoff: [100ms]}}
`, t.TempDir(), lab.Addr, lab.User, lab.KeyFile, lab.KnownHosts, outbound, emr.Addr, emr.User, emr.KeyFile, emr.KnownHosts, inbound)
	stop, stderr := startServe(t, cfg)

	batch := "FHS|^~\\&|LAB\r"
	for i := 1; i <= 3; i++ {
		batch += fmt.Sprintf("MSH|^~\\&|LAB|F|EHR|H|20260114120000||ORU^R01|SF%d|P|2.5\rPID|1||MRN%d||Sftpfamily^Ann\r", i, i)
	}
	batch += "FTS|1\r"
	require.NoError(t, os.WriteFile(filepath.Join(outbound, ".b.tmp"), []byte(batch), 0o644))
	require.NoError(t, os.Rename(filepath.Join(outbound, ".b.tmp"), filepath.Join(outbound, "b.hl7")))
	files := func() []string {
		entries, _ := os.ReadDir(inbound)
		var names []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") { // a file being written (.NAME.tmp) is not there yet
				names = append(names, e.Name())
			}
		}
		return names
	}
	require.Eventually(t, func() bool { return len(files()) == 3 }, 20*time.Second, 20*time.Millisecond, "waiting for 3 files on the EMR's server; stderr: %s", stderr)
	assert.Equal(t, []string{"0000000001_SF1.hl7", "0000000002_SF2.hl7", "0000000003_SF3.hl7"}, files())
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(lab.Dir, "done", "b.hl7")); return err == nil },
		10*time.Second, 20*time.Millisecond, "waiting for b.hl7 in done/ on the lab's server")

	emr.Stop()
	second := strings.ReplaceAll(batch, "|SF", "|SG")
	require.NoError(t, os.WriteFile(filepath.Join(outbound, "c.hl7"), []byte(second), 0o644))
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(lab.Dir, "done", "c.hl7")); return err == nil },
		10*time.Second, 20*time.Millisecond, "waiting for c.hl7 to be stored while the EMR's server is down")
	assert.Len(t, files(), 3, "nothing written while the server is down")
	emr.Restart()
	require.Eventually(t, func() bool { return len(files()) == 6 }, 30*time.Second, 50*time.Millisecond, "waiting for the 3 held messages after the restart; stderr: %s", stderr)
	assert.Equal(t, "0000000006_SG3.hl7", files()[5])

	assert.Equal(t, 0, stop(), "stderr: %s", stderr.String())
	assert.NotContains(t, stderr.String(), "Sftpfamily")
}
