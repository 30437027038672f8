package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

const routetest = "../../testdata/routetest"

// TestRouteTestGolden: route test's whole report for the fixture config
// and messages, against testdata/routetest/expected.txt (go test
// ./cmd/hl7broker -run RouteTest -update rewrites it after a reviewed change).
func TestRouteTestGolden(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := runCmd(t, "route", "test", "--config", filepath.Join(routetest, "hl7broker.yaml"), "--out", out,
		filepath.Join(routetest, "adt.hl7"), filepath.Join(routetest, "oru.hl7"), filepath.Join(routetest, "rde.hl7"))
	require.Equal(t, 0, code, stderr)
	golden := filepath.Join(routetest, "expected.txt")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(stdout), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), stdout)

	sent, err := os.ReadFile(filepath.Join(out, "adt-1-emr.hl7"))
	require.NoError(t, err)
	assert.Equal(t, "MSH|^~\\&|REGADT|MCM|EMR|HOSP|20260114081530||ADT^A01^ADT_A01|ADT0001|P|2.5.1\rEVN|A01|20260114081500\r"+
		"PID|1||MRN100^^^MCM^MR||Doe^Jane||19800101|F\rPV1|1|I|W2^201^B^MAIN\r", string(sent), "--out writes the exact bytes")
	unchanged, err := os.ReadFile(filepath.Join(out, "oru-2-archive.hl7"))
	require.NoError(t, err)
	original, _ := os.ReadFile(filepath.Join(routetest, "oru.hl7"))
	assert.Contains(t, string(original), string(unchanged), "an untransformed copy is the received bytes")
}

func TestRouteTestErrors(t *testing.T) {
	stdout, _, code := runCmd(t, "route", "test", "--config", filepath.Join(routetest, "hl7broker.yaml"), "--listener", "nope", filepath.Join(routetest, "adt.hl7"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, `no listener or source is named "nope"`)
	stdout, _, code = runCmd(t, "route", "test", "--config", filepath.Join(routetest, "hl7broker.yaml"), "--listener", "lab", filepath.Join(routetest, "adt.hl7"))
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "listener lab accepts [ORU], not ADT (AR)")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listeners: []\n"), 0o644))
	stdout, _, code = runCmd(t, "route", "test", "--config", bad, filepath.Join(routetest, "adt.hl7"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "at least one listener")
}

// route test answers as serve would: a message serve rejects for an
// empty MSH-10 is shown rejected, and each copy is written exactly as its
// destination receives it (JSON, or ER7 with its segment terminator).
func TestRouteTestAsServeWould(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hl7broker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`listeners: [{name: lab, addr: "127.0.0.1:0"}]
routes: [{name: all, to: [api, crlf]}]
destinations:
  - {name: api, type: http, url: "http://127.0.0.1:9/in", encoding: json}
  - {name: crlf, type: file, dir: out, segment_terminator: crlf}
`), 0o600))
	msgFile := filepath.Join(dir, "msgs.hl7")
	require.NoError(t, os.WriteFile(msgFile, []byte("MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|C1|P|2.5\rPID|1||P1\r\r"+
		"MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01||P|2.5\rPID|1||P2\r"), 0o600))
	out := t.TempDir()
	stdout, stderr, code := runCmd(t, "route", "test", "--config", cfg, "--out", out, msgFile)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "not accepted: the listener would reject it (AR)", "the empty MSH-10")
	assert.Equal(t, 1, strings.Count(stdout, "-> api"), "only the first message is routed")
	js, err := os.ReadFile(filepath.Join(out, "msgs-1-api.json"))
	require.NoError(t, err)
	assert.True(t, json.Valid(js), "the http destination receives JSON: %s", js)
	er7, err := os.ReadFile(filepath.Join(out, "msgs-1-crlf.hl7"))
	require.NoError(t, err)
	assert.Equal(t, "MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|C1|P|2.5\r\nPID|1||P1\r\n", string(er7))
}

// route test runs scripts: it shows their log lines, the variables each
// copy carries, what a failing script threw, and writes each encoder's
// payload as the destination would send it.
func TestRouteTestRunsScripts(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hl7broker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`listeners: [{name: lab, addr: "127.0.0.1:0"}]
routes:
  - name: results
    transform:
      - script: |
          var mrn = msg.get('PID-3.1');
          if (mrn == 'P2') { throw new Error('no such patient ' + mrn); }
          vars.mrn = mrn;
          log.info('mapped', mrn);
    to: [api]
destinations:
  - name: api
    type: http
    url: "http://127.0.0.1:9/in"
    encoder: {script: "return {patient: vars.mrn, control: msg.get('MSH-10')}"}
`), 0o600))
	msgFile := filepath.Join(dir, "msgs.hl7")
	require.NoError(t, os.WriteFile(msgFile, []byte("MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|C1|P|2.5\rPID|1||P1\r\r"+
		"MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|C2|P|2.5\rPID|1||P2\r"), 0o600))
	out := t.TempDir()
	stdout, stderr, code := runCmd(t, "route", "test", "--config", cfg, "--out", out, msgFile)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "log (route results step 1) info: mapped P1")
	assert.Contains(t, stdout, `var mrn = "P1"`)
	assert.Contains(t, stdout, "dead letter: transform of route results failed: transform step 1 (script): script route results step 1 line 2:")
	assert.Contains(t, stdout, "thrown: Error: no such patient P2", "route test shows what was thrown")
	js, err := os.ReadFile(filepath.Join(out, "msgs-1-api.json"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"patient":"P1","control":"C1"}`, string(js))
}
