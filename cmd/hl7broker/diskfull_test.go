package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readyz(admin string) (int, string) {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Full disk: data_dir on a 40 MB tmpfs is filled under load. While it is
// full no sender gets AA and /readyz says why; once space is freed the
// broker recovers by itself (the embedded JetStream, which shut itself
// down, is started again in process) and AA resumes within 30 s; every
// message acked AA is delivered.
func TestFullDiskRecoversByItself(t *testing.T) {
	skipUnlessFaultTests(t)
	data := testkit.MountTmpfs(t, 40)
	in, sinkAddr, admin := freePort(t), freePort(t), freePort(t)
	config := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
nats: {durability: fsync, store_timeout: 2s}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", timeout: 2s, ordering: key, partition_by: PID-3.1, partitions: 4, retry: {max_attempts: 10000, backoff: [100ms, 500ms]}}]
`, filepath.Join(data, "broker"), admin, in, sinkAddr)
	serve := startServeProcess(t, writeConfig(t, config))
	defer serve.kill()

	done := startBench(t, "--addr", in, "--sink", sinkAddr, "--sink-wait", "120s",
		"--connections", "4", "--messages", "4000", "--rate", "150", "--patients", "50", "--timeout", "3s")
	require.Eventually(t, func() bool { return ackedAA(admin) >= 300 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `ackedAA(admin) >= 300`)

	filler := filepath.Join(data, "filler")
	testkit.FillDisk(t, filler, 0)
	ae := metric(admin, "hl7broker_acks_total", `code="AE"`)
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_acks_total", `code="AE"`) > ae }, 30*time.Second, 20*time.Millisecond,
		"senders get AE once the disk is full")
	code, body := readyz(admin)
	assert.Equal(t, http.StatusServiceUnavailable, code, "/readyz while the disk is full: %s", body)
	assert.Contains(t, body, `"storage"`)
	assert.Zero(t, metric(admin, "hl7broker_store_ok"), "store_ok says so")
	<-time.After(time.Second) // what was in flight when it filled
	aaFull := ackedAA(admin)
	<-time.After(5 * time.Second) // the disk stays full
	assert.Equal(t, aaFull, ackedAA(admin), "an AA while the disk was full")

	require.NoError(t, os.Remove(filler))
	freed := time.Now()
	testkit.WaitFor(t, 30*time.Second, func() error {
		if n := ackedAA(admin); n <= aaFull+50 {
			return fmt.Errorf("AA again within 30 s of freeing space, without a restart: %.0f AA so far (%.0f while full); stderr: %s", n, aaFull, serve.stderr.String())
		}
		return nil
	})
	t.Logf("AA resumed %v after the space was freed", time.Since(freed).Round(100*time.Millisecond))
	require.Eventually(t, func() bool { c, _ := readyz(admin); return c == http.StatusOK }, 30*time.Second, 100*time.Millisecond,
		"/readyz green again")

	r := waitBench(t, done, 4*time.Minute)
	assertNothingLost(t, r)
	assert.Positive(t, r.Acks["AE"]+int(r.Errors), "the full disk was felt by senders")
}
