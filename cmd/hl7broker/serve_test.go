package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs "hl7broker serve" in-process on config (YAML) until the
// broker has started. stop ends it as SIGINT would and returns its exit code.
func startServe(t *testing.T, config string) (stop func() int, stderr *syncbuf.Buffer) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(file, []byte(config), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, strings.NewReader(""), &syncbuf.Buffer{}, stderr)
	}()
	var once sync.Once
	code := 0
	stop = func() int { once.Do(func() { cancel(); code = <-done }); return code }
	t.Cleanup(func() { stop() })
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), `"message":"broker started"`) }, 10*time.Second, 10*time.Millisecond, stderr.String())
	return stop, stderr
}

// TestServeEndToEnd runs serve on a config like the example: send's
// messages are stored, routed and delivered to listen, and serve stops
// cleanly with exit code 0.
func TestServeEndToEnd(t *testing.T) {
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	adtAddr := freePort(t)
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
listeners:
  - {name: adt, addr: "%s", accept_types: [ADT]}
routes:
  - {name: adt-to-emr, from: [adt], when: {type: [ADT]}, to: [emr]}
destinations:
  - {name: emr, type: mllp, addr: "%s", retry: {max_attempts: 5, backoff: [50ms]}}
`, t.TempDir(), adtAddr, downstream)
	stop, stderr := startServe(t, cfg)

	stdout, _, code := runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "adt_a04_lf.hl7"), filepath.Join(testdata, "adt_a08_crlf.hl7"))
	require.Equal(t, 0, code, stdout)
	require.Eventually(t, func() bool { names, _ := received(t, outDir); return len(names) == 2 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(names) == 2`)
	names, _ := received(t, outDir)
	assert.Equal(t, []string{"000001-A04-778812.hl7", "000002-MSG00008.hl7"}, names, "delivered in order")

	assert.Equal(t, 0, stop(), "serve exits 0 on SIGINT/SIGTERM; stderr: %s", stderr.String())
	assert.Contains(t, stderr.String(), "broker stopped")
	for _, phi := range []string{"O'Brien", "Siobhán", "Müller"} {
		assert.NotContains(t, stderr.String(), phi)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listeners: []\n"), 0o644))
	_, errOut, code := runCmd(t, "serve", "--config", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "at least one listener or source")
}

// TestServeFileSourceEndToEnd drops a batch file into a file source's
// folder: each message is stored, routed and delivered in order, the file
// moves to done/, and a file with a bad message goes to error/ with its
// report.
func TestServeFileSourceEndToEnd(t *testing.T) {
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	drop := filepath.Join(t.TempDir(), "inbox")
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
sources:
  - {name: labdrop, type: file, dir: "%s", poll: 50ms, stable_for: 100ms}
routes:
  - {name: files-to-emr, from: [labdrop], to: [emr]}
destinations:
  - {name: emr, type: mllp, addr: "%s", retry: {max_attempts: 5, backoff: [50ms]}}
`, t.TempDir(), drop, downstream)
	stop, stderr := startServe(t, cfg)

	var batch []byte
	for _, f := range []string{"adt_a04_lf.hl7", "adt_a08_crlf.hl7"} {
		b, err := os.ReadFile(filepath.Join(testdata, f))
		require.NoError(t, err)
		batch = append(append(batch, b...), '\r')
	}
	batch = append([]byte("FHS|^~\\&|REG\r"), append(batch, []byte("FTS|2\r")...)...)
	// The source makes its folder as it starts, which may be just after
	// "broker started" is logged.
	require.Eventually(t, func() bool { _, err := os.Stat(drop); return err == nil }, 10*time.Second, 10*time.Millisecond, "waiting for the source to make %s", drop)
	require.NoError(t, os.WriteFile(filepath.Join(drop, "batch.hl7.tmp"), batch, 0o640))
	require.NoError(t, os.Rename(filepath.Join(drop, "batch.hl7.tmp"), filepath.Join(drop, "batch.hl7")))
	require.Eventually(t, func() bool { names, _ := received(t, outDir); return len(names) == 2 }, 10*time.Second, 10*time.Millisecond, "waiting for %s; stderr: %s", `len(names) == 2`, stderr)
	names, _ := received(t, outDir)
	assert.Equal(t, []string{"000001-A04-778812.hl7", "000002-MSG00008.hl7"}, names, "delivered in the file's order")
	done := filepath.Join(filepath.Dir(drop), "done", "batch.hl7")
	require.Eventually(t, func() bool { _, err := os.Stat(done); return err == nil }, 10*time.Second, 10*time.Millisecond, "waiting for %s", done)

	require.NoError(t, os.WriteFile(filepath.Join(drop, "broken.hl7"), []byte("PID|1||X^^^H^MR||O'Brien^Siobhán\r"), 0o640))
	report := filepath.Join(filepath.Dir(drop), "error", "broken.hl7.report.json")
	require.Eventually(t, func() bool { _, err := os.Stat(report); return err == nil }, 10*time.Second, 10*time.Millisecond, "waiting for %s", report)

	assert.Equal(t, 0, stop(), "stderr: %s", stderr.String())
	for _, phi := range []string{"O'Brien", "Siobhán", "Müller"} {
		assert.NotContains(t, stderr.String(), phi)
	}
	assert.Contains(t, stderr.String(), `"file":"broken.hl7"`)
}

// TestServeHTTPSourceEndToEnd POSTs a message to an HTTP source of a real
// serve: 200 with its AA, then delivered downstream.
func TestServeHTTPSourceEndToEnd(t *testing.T) {
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	addr := freePort(t)
	t.Setenv("HL7_WEBIN_TOKEN", "webin-token-0123456789")
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
sources:
  - {name: webin, type: http, addr: "%s", path: /hl7, tokens: [{name: lab, token_env: HL7_WEBIN_TOKEN}]}
routes:
  - {name: web-to-emr, from: [webin], to: [emr]}
destinations:
  - {name: emr, type: mllp, addr: "%s", retry: {max_attempts: 5, backoff: [50ms]}}
`, t.TempDir(), addr, downstream)
	stop, stderr := startServe(t, cfg)
	msg, err := os.ReadFile(filepath.Join(testdata, "adt_a08_crlf.hl7"))
	require.NoError(t, err)
	var resp *http.Response
	require.Eventually(t, func() bool { // the source binds under supervision, just after "broker started"
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hl7", bytes.NewReader(msg))
		req.Header.Set("Content-Type", "x-application/hl7-v2+er7")
		req.Header.Set("Authorization", "Bearer webin-token-0123456789")
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "waiting for the HTTP source to accept connections")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "MSA|AA|MSG00008")
	require.Eventually(t, func() bool { names, _ := received(t, outDir); return len(names) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for the delivery; stderr: %s", stderr)
	assert.Equal(t, 0, stop(), "stderr: %s", stderr.String())
	assert.NotContains(t, stderr.String(), "webin-token-0123456789")
}

// memory_limit sets Go's soft limit where no container gives one, and
// serve says so.
func TestServeSetsTheMemoryLimitFromTheConfig(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: it wins over memory_limit")
	}
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	stop, stderr := startServe(t, fmt.Sprintf("data_dir: %s\nadmin: {addr: \"\"}\nmemory_limit: 3GiB\nlisteners: [{name: a, addr: %q}]\n", t.TempDir(), freePort(t)))
	assert.Equal(t, int64(3<<30), debug.SetMemoryLimit(-1))
	assert.Contains(t, stderr.String(), `"soft_limit_mib":3072`)
	assert.Contains(t, stderr.String(), "memory: soft limit from memory_limit")
	assert.Equal(t, 0, stop())
}
