package main

// Interop with real third-party software: Debian's python3-hl7 (0.4.5),
// its mllp_send client and its asyncio MLLP server. .ci/run installs it;
// without it these tests skip.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/interop"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const corpusDir = "../../../shared/corpus"

// interopMessages are our testdata messages and, when the corpus is
// beside the repository, every corpus message that parses.
func interopMessages(t *testing.T) [][]byte {
	t.Helper()
	var files []string
	ours, _ := filepath.Glob(filepath.Join(testdata, "*.hl7"))
	files = append(files, ours...)
	_ = filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "SOURCES.md" {
			files = append(files, path)
		}
		return nil
	})
	var msgs [][]byte
	for _, f := range files {
		data := readFile(t, f)
		b, err := hl7.SplitBatch(data, hl7.Limits{})
		if err != nil {
			continue
		}
		for _, m := range b.Messages {
			if _, err := hl7.Parse(m); err == nil {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs
}

func TestPythonMLLPSendToListen(t *testing.T) {
	mllpSend, err := exec.LookPath("mllp_send")
	if err != nil {
		t.Skip("mllp_send not found: install Debian's python3-hl7 (.ci/run does)")
	}
	msgs := interopMessages(t)
	require.NotEmpty(t, msgs)
	out := t.TempDir()
	addr := startListen(t, "--out", out)
	host, port, _ := strings.Cut(addr, ":")

	var framed []byte
	for _, m := range msgs {
		framed = mllp.AppendFrame(framed, m)
	}
	input := filepath.Join(t.TempDir(), "framed.hl7")
	require.NoError(t, os.WriteFile(input, framed, 0o644))
	cmd := exec.Command(mllpSend, "-p", port, "-f", input, host)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "mllp_send: %s", stderr.String())

	// mllp_send prints each ACK frame it received.
	r := mllp.NewReader(&stdout)
	for i, m := range msgs {
		ackBytes, err := r.ReadFrame()
		require.NoError(t, err, "ACK %d", i+1)
		ack, err := hl7.ParseAck(ackBytes)
		require.NoError(t, err)
		parsed, _ := hl7.Parse(m)
		assert.True(t, ack.Positive(), "message %d got %s", i+1, ack.Code)
		assert.Equal(t, parsed.ControlID(), ack.ControlID, "message %d: MSA-2", i+1)
	}
	// listen wrote each message exactly as mllp_send sent it: the bytes
	// between the frame bytes, which mllp_send strips of leading and
	// trailing 0x0B and CR.
	_, contents := received(t, out)
	require.Len(t, contents, len(msgs))
	for i, m := range msgs {
		want := bytes.Trim(m, "\x0b\r")
		assert.True(t, bytes.Equal(want, contents[i]), "message %d was not written byte for byte", i+1)
	}
	t.Logf("mllp_send sent %d messages; every ACK positive, every message written byte for byte", len(msgs))
}

func TestSendToPythonServer(t *testing.T) {
	addr := interop.StartPythonServer(t, "ack")
	files, _ := filepath.Glob(filepath.Join(testdata, "*.hl7"))
	stdout, stderr, code := runCmd(t, append([]string{"send", "--addr", addr}, files...)...)
	require.Equal(t, 0, code, "stdout %s\nstderr %s", stdout, stderr)
	rows := lines(stdout)
	assert.Len(t, rows, len(files)+2, "batch_file.hl7 holds three messages")
	for _, r := range rows {
		assert.Equal(t, "AA", r[3], "%v", r)
		assert.NotEqual(t, "-", r[2])
	}
}

// TestSimpleHL7SendToListen: the npm package simple-hl7's TcpClient sends
// our one-message testdata files to listen over one connection.
func TestSimpleHL7SendToListen(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	if _, err := os.Stat("../../testdata/node/node_modules/simple-hl7"); err != nil {
		t.Skip("simple-hl7 not installed: run npm ci in testdata/node (.ci/run does)")
	}
	files := []string{"adt_a01.hl7", "adt_a04_lf.hl7", "adt_a08_crlf.hl7", "oru_r01.hl7", "oru_r01_v27.hl7"}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(testdata, f))
	}
	out := t.TempDir()
	addr := startListen(t, "--out", out)
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(node, append([]string{"../../testdata/node/simple_hl7_send.js", host, port}, paths...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "simple-hl7: %s", stderr.String())

	rows := lines(stdout.String())
	require.Len(t, rows, len(files))
	_, contents := received(t, out)
	require.Len(t, contents, len(files))
	for i, p := range paths {
		m, err := hl7.Parse(readFile(t, p))
		require.NoError(t, err)
		assert.Contains(t, []string{"AA", "CA"}, rows[i][0], "%s", files[i])
		assert.Equal(t, m.ControlID(), rows[i][1], "%s: MSA-2 as simple-hl7 read it", files[i])
		want := strings.NewReplacer("\r\n", "\r", "\n", "\r").Replace(string(readFile(t, p)))
		assert.Equal(t, want, string(contents[i]), "%s written as simple-hl7 sent it", files[i])
	}
}
