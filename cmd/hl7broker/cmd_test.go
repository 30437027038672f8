package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testdata = "../../hl7/testdata"

// runCmd runs the command line in-process and returns its output and exit code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// startListen runs "hl7broker listen" in-process on a free port and
// returns its address. Cleanup stops it as SIGINT would and checks that
// it exited 0.
func startListen(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncbuf.Buffer // listen logs from its connections' goroutines
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"listen", "--addr", "127.0.0.1:0"}, args...), strings.NewReader(""), pw, &stderr)
		pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "listen printed nothing; stderr: %s", stderr.String())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	require.True(t, ok, "first line %q", line)
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-done, "listen's exit code; stderr: %s", stderr.String())
		assert.NotContains(t, stderr.String(), "Müller", "no message content in listen's log")
	})
	return addr
}

// lines splits command output into its tab-separated report lines.
func lines(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows
}

// received returns the files listen --out wrote, in arrival order.
func received(t *testing.T, dir string) (names []string, contents [][]byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			continue
		}
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		contents = append(contents, b)
	}
	return names, contents
}

func TestSendToListen(t *testing.T) {
	out := t.TempDir()
	addr := startListen(t, "--out", out)
	files := []string{"adt_a01.hl7", "adt_a04_lf.hl7", "batch_file.hl7", "adt_a08_custom_delims.hl7"}
	var args []string
	for _, f := range files {
		args = append(args, filepath.Join(testdata, f))
	}
	stdout, stderr, code := runCmd(t, append([]string{"send", "--addr", addr}, args...)...)
	require.Equal(t, 0, code, "stdout %s\nstderr %s", stdout, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 6)
	want := [][]string{
		{"adt_a01.hl7", "1", "MSG00001", "CA"}, {"adt_a04_lf.hl7", "1", "A04-778812", "AA"},
		{"batch_file.hl7", "1", "B-1", "AA"}, {"batch_file.hl7", "2", "B-2", "AA"}, {"batch_file.hl7", "3", "B-3", "AA"},
		{"adt_a08_custom_delims.hl7", "1", "MSG00009", "AA"},
	}
	for i, r := range rows {
		assert.Equal(t, want[i], []string{filepath.Base(r[0]), r[1], r[2], r[3]})
	}
	assert.Contains(t, stderr, "sent 6, accepted 6, failed 0")

	names, contents := received(t, out)
	require.Len(t, names, 6)
	assert.Equal(t, "000001-MSG00001.hl7", names[0])
	assert.Equal(t, "000006-MSG00009.hl7", names[5])
	// Every segment ends in CR on the wire; the LF file was converted.
	lf := readFile(t, filepath.Join(testdata, "adt_a04_lf.hl7"))
	assert.Equal(t, strings.ReplaceAll(string(lf), "\n", "\r")+"\r", string(contents[1]))
	assert.Equal(t, string(readFile(t, filepath.Join(testdata, "adt_a01.hl7"))), string(contents[0]))
}

func TestSendFlags(t *testing.T) {
	out := t.TempDir()
	addr := startListen(t, "--out", out)
	lf := filepath.Join(testdata, "adt_a04_lf.hl7")
	stdout, _, code := runCmd(t, "send", "--addr", addr, "--keep-terminators", "--fresh-control-id", "--repeat", "3", "--rate", "1000", lf)
	require.Equal(t, 0, code)
	rows := lines(stdout)
	require.Len(t, rows, 3)
	ids := []string{rows[0][2], rows[1][2], rows[2][2]}
	assert.NotContains(t, ids, "A04-778812", "fresh control IDs")
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), 3, "each send has its own control ID")
	_, contents := received(t, out)
	require.Len(t, contents, 3)
	m, err := hl7.Parse(contents[2])
	require.NoError(t, err)
	assert.Equal(t, ids[2], m.ControlID())
	assert.NotContains(t, string(contents[2]), "\r", "--keep-terminators sent the file's LF as they are")
}

func TestSendReportsNegativeAcks(t *testing.T) {
	for _, code := range []string{"AE", "AR", "CE", "CR"} {
		addr := startListen(t, "--ack", code)
		stdout, _, exit := runCmd(t, "send", "--addr", addr, filepath.Join(testdata, "oru_r01.hl7"))
		assert.Equal(t, 1, exit, "--ack %s", code)
		rows := lines(stdout)
		require.Len(t, rows, 1)
		assert.Equal(t, code, rows[0][3])
	}
	bad := filepath.Join(t.TempDir(), "bad.hl7")
	require.NoError(t, os.WriteFile(bad, []byte("MSH|^~\\&|A|B\rPID|1\r/* note */\r"), 0o644))
	notHL7 := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(notHL7, []byte("just some notes\n"), 0o644))
	addr := startListen(t)
	stdout, _, exit := runCmd(t, "send", "--addr", addr, bad, notHL7)
	assert.Equal(t, 1, exit)
	rows := lines(stdout)
	require.Len(t, rows, 2)
	assert.Equal(t, "AR", rows[1][3], "an unparseable message is still sent and rejected: %v", rows[1])
	assert.Contains(t, rows[0][4], "segment before any MSH", "a file that is not HL7 is reported")

	_, stderr, exit := runCmd(t, "send")
	assert.Equal(t, 2, exit)
	assert.Contains(t, stderr, "addr")
	_, _, exit = runCmd(t, "listen", "--ack", "XX")
	assert.Equal(t, 2, exit)
}

func TestSendAndListenOverMutualTLS(t *testing.T) {
	p := testpki.New(t)
	addr := startListen(t, "--tls-cert", p.ServerCert, "--tls-key", p.ServerKey, "--tls-client-ca", p.CAFile)
	msg := filepath.Join(testdata, "oru_r01.hl7")
	stdout, _, code := runCmd(t, "send", "--addr", addr, "--tls-ca", p.CAFile, "--tls-cert", p.ClientCert, "--tls-key", p.ClientKey, msg)
	require.Equal(t, 0, code, stdout)
	assert.Equal(t, "CA", lines(stdout)[0][3], "the ORU asks for enhanced mode")
	stdout, _, code = runCmd(t, "send", "--addr", addr, "--tls-ca", p.CAFile, "--timeout", "2s", msg)
	assert.Equal(t, 1, code, "no client certificate: %s", stdout)
}

func TestStdinAndBOM(t *testing.T) {
	addr := startListen(t)
	var out, errb bytes.Buffer
	in := "\xEF\xBB\xBF" + string(readFile(t, filepath.Join(testdata, "batch_file.hl7")))
	code := run(context.Background(), []string{"send", "--addr", addr}, strings.NewReader(in), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	rows := lines(out.String())
	require.Len(t, rows, 3)
	assert.Equal(t, "-", rows[0][0])
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestCheck(t *testing.T) {
	stdout, _, code := runCmd(t, "check", "--config", "../../examples/hl7broker.yaml")
	assert.Equal(t, 0, code, stdout)
	assert.Contains(t, stdout, "valid (2 listeners, 2 routes, 2 destinations)")
	assert.NotContains(t, stdout, "warning", "the example's admin address is on loopback")

	open := filepath.Join(t.TempDir(), "open.yaml")
	example := strings.Replace(string(readFile(t, "../../examples/hl7broker.yaml")), "addr: 127.0.0.1:8080", "addr: 0.0.0.0:8080", 1)
	require.NoError(t, os.WriteFile(open, []byte(example), 0o644))
	stdout, _, code = runCmd(t, "check", "--config", open)
	assert.Equal(t, 0, code, "a warning does not fail check")
	assert.Contains(t, stdout, "warning: admin.addr: 0.0.0.0:8080 is reachable beyond this machine without TLS")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listeners: [{name: adt, addr: nowhere}]\nroutes: [{name: r, to: [emr]}]\n"), 0o644))
	stdout, _, code = runCmd(t, "check", "--config", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "2 problem(s)")
	assert.Contains(t, stdout, `listeners[0].addr: "nowhere" is not HOST:PORT`)
	assert.Contains(t, stdout, `routes[0].to[0]: no destination is named "emr"`)
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCmd(t, "version")
	require.Equal(t, 0, code)
	assert.Regexp(t, `^hl7broker \S+ \(commit ([0-9a-f]+|unknown).*, go1\.\d+`, stdout)
	flag, _, code := runCmd(t, "--version")
	require.Equal(t, 0, code)
	assert.Equal(t, stdout, flag, "version and --version print the same")
	version = "v9.9.9"
	defer func() { version = "" }()
	assert.Contains(t, versionString(), "v9.9.9 (commit ", "a release build's -X main.version wins")
}

// TestEveryHelpFileIsACommandsHelp: help/*.txt are each some command's
// long help, and every command that has long help reads it from there.
func TestEveryHelpFileIsACommandsHelp(t *testing.T) {
	entries, err := helpFiles.ReadDir("help")
	require.NoError(t, err)
	var walk func(c *cobra.Command) int
	walk = func(c *cobra.Command) int {
		n := 0
		if c.Long != "" {
			n++
			assert.NotContains(t, c.Long, "\n\n\n", c.Name())
		}
		for _, sub := range c.Commands() {
			n += walk(sub)
		}
		return n
	}
	assert.Equal(t, len(entries), walk(newRootCmd()), "one help file per command with long help")
}
