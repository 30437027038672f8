package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/loadtest"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as hl7broker: with HL7BROKER_TEST_MAIN set it
// runs the command line its arguments give, so fault tests can run serve
// as a real process and kill it.
func TestMain(m *testing.M) {
	if os.Getenv("HL7BROKER_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// serveProcess is serve running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
}

func startServeProcess(t *testing.T, config string) *serveProcess {
	t.Helper()
	p := &serveProcess{stderr: &syncbuf.Buffer{}}
	args := []string{"serve", "--config", config}
	if os.Getenv("SERVE_DEBUG") != "" {
		args = append(args, "--log-level", "debug")
	}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), "HL7BROKER_TEST_MAIN=1")
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	testkit.WaitFor(t, 20*time.Second, func() error { // the error shows stderr as it is when the wait gives up
		if out := p.stderr.String(); !strings.Contains(out, `"message":"broker started"`) {
			return fmt.Errorf("serve did not start: %s", out)
		}
		return nil
	})
	return p
}

func (p *serveProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// stop asks serve to shut down (SIGTERM: it finishes what is in flight)
// and waits up to limit; it is an error if serve has not exited by then,
// or exits with a failure.
func (p *serveProcess) stop(limit time.Duration) error { return stopProcess(p.cmd, limit) }

// stopProcess sends cmd's process SIGTERM and waits up to limit for it to
// exit (then kills it).
func stopProcess(cmd *exec.Cmd, limit time.Duration) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not exit within %s of SIGTERM", filepath.Base(cmd.Path), limit)
	}
}

// Crash: serve under load from bench is killed with SIGKILL three times
// and restarted; every message that got a positive ACK is delivered, in
// order per patient. Duplicates (a delivery whose ACK the crash cut off)
// are allowed and reported.
func TestCrashLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: runs serve as a process for 10 to 60 s")
	}
	if raceEnabled {
		t.Skip("fault test: a system test, run without -race (.ci/run's go test ./... runs it)")
	}
	in, sinkAddr, admin := freePort(t), freePort(t), freePort(t)
	config := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
nats: {durability: fsync}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", timeout: 2s, ordering: key, partition_by: PID-3.1, partitions: 4, retry: {max_attempts: 1000, backoff: [100ms]}}]
`, t.TempDir(), admin, in, sinkAddr)
	file := writeConfig(t, config)

	serve := startServeProcess(t, file)
	var mu sync.Mutex
	defer func() { mu.Lock(); serve.kill(); mu.Unlock() }()

	benchDone := make(chan string, 1)
	go func() {
		// Bounded load (6,000 messages) so that delivery finishes well
		// inside the wait on a slow disk too; a count, not a duration, so
		// that the three crashes always come while it runs.
		stdout, _, _ := runCmd(t, "bench", "--json", "--progress", "0", "--addr", in, "--sink", sinkAddr, "--sink-wait", "120s",
			"--connections", "4", "--messages", "6000", "--rate", "1500", "--patients", "50", "--timeout", "3s")
		benchDone <- stdout
	}()
	for range 3 {
		// Crash mid-stream: once this process has acknowledged 300 messages.
		require.Eventually(t, func() bool { return ackedAA(admin) >= 300 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `ackedAA(admin) >= 300`)
		mu.Lock()
		serve.kill()
		serve = startServeProcess(t, file)
		mu.Unlock()
	}
	var r loadtest.Result
	select {
	case out := <-benchDone:
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	case <-time.After(3 * time.Minute):
		t.Fatal("bench did not finish")
	}
	require.NotNil(t, r.Sink)
	if os.Getenv("CRASH_DEBUG") != "" {
		mu.Lock()
		t.Logf("last serve's log:\n%s", serve.stderr.String())
		mu.Unlock()
	}
	assertNothingLost(t, r)
}

// ackedAA reads hl7broker_acks_total{code="AA"} from serve's /metrics
// (0 when it cannot).
func ackedAA(admin string) float64 { return metric(admin, "hl7broker_acks_total", `code="AA"`) }
