// Package interop starts real third-party HL7 software for tests and
// benchmarks, skipping when it is not installed.
package interop

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// DebianPython is the interpreter Debian's python3-hl7 is installed for.
const DebianPython = "/usr/bin/python3"

// repoRoot is found from this file, so callers in any package can use it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// StartPythonServer runs testdata/python/mllp_server.py (python-hl7's
// asyncio MLLP server) in mode "ack" (parse and create_ack) or "fixed"
// (a fixed ACK, no parsing) and returns its 127.0.0.1 address. It skips t
// when python3-hl7 is missing, and stops the server at cleanup.
func StartPythonServer(t testing.TB, mode string) string {
	t.Helper()
	if err := exec.Command(DebianPython, "-c", "import hl7.mllp").Run(); err != nil {
		t.Skip("python-hl7's asyncio MLLP server is not available: install Debian's python3-hl7 (.ci/run does)")
	}
	cmd := exec.Command(DebianPython, filepath.Join(repoRoot(), "testdata", "python", "mllp_server.py"), mode)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("python server printed nothing: %v; stderr: %s", err, stderr.String())
	}
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("python server said %q", line)
	}
	return "127.0.0.1:" + port
}
