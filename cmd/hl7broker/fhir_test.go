package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeFHIREndToEnd: MLLP in, each message converted and POSTed to a
// FHIR server (127.0.0.1) as a transaction. The server's first answer is
// 503 (retried), then it accepts; a Bundle it refuses with 422 is
// dead-lettered with the OperationOutcome's codes, never its text.
func TestServeFHIREndToEnd(t *testing.T) {
	var mu sync.Mutex
	var bundles []map[string]any
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.Header.Get("Authorization") != "Bearer tok-e2e" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if strings.Contains(string(body), `"value":"REFUSE"`) {
			w.WriteHeader(422)
			io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"patient Quixote already exists","expression":["Patient"]}]}`)
			return
		}
		var b map[string]any
		_ = json.Unmarshal(body, &b)
		bundles = append(bundles, b)
		io.WriteString(w, `{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}}]}`)
	}))
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok-e2e\n"), 0o600))
	in, admin := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: to-ehr, to: [ehr]}]
destinations:
  - name: ehr
    type: fhir
    url: "%s/fhir"
    token: "${file:%s}"
    time_zone: America/Chicago
    retry: {max_attempts: 100, backoff: [50ms]}
`, t.TempDir(), admin, in, srv.URL, tokenFile)
	stop, stderr := startServe(t, cfg)
	send := func(id, mrn string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "m.hl7")
		msg := "MSH|^~\\&|REG|HOSP|EHR|HOSP|20260114081530||ADT^A01^ADT_A01|" + id + "|P|2.5.1\r" +
			"PID|1||" + mrn + "^^^HOSP^MR||Quixote^Alonso||19700101|M\rPV1|1|I|4E^412^B\r"
		require.NoError(t, os.WriteFile(f, []byte(msg), 0o644))
		out, errOut, code := runCmd(t, "send", "--addr", in, f)
		require.Equal(t, 0, code, "%s%s", out, errOut)
	}
	send("F1", "MRN1")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bundles) == 1 }, 20*time.Second, 20*time.Millisecond,
		"waiting for the Bundle after a 503; stderr: %s", stderr)
	mu.Lock()
	b := bundles[0]
	mu.Unlock()
	assert.Equal(t, "transaction", b["type"])
	assert.Equal(t, "2026-01-14T08:15:30-06:00", b["timestamp"], "times without an offset read in time_zone")

	send("F2", "REFUSE")
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_dead_lettered_total", `destination="ehr"`) == 1 },
		20*time.Second, 20*time.Millisecond, "waiting for the dead letter; stderr: %s", stderr)
	assert.Equal(t, 0, stop(), "stderr: %s", stderr.String())
	for _, phi := range []string{"Quixote", "Alonso", "tok-e2e"} {
		assert.NotContains(t, stderr.String(), phi)
	}
	assert.Contains(t, stderr.String(), "HTTP 422 Unprocessable Entity: error business-rule at Patient")
}

// TestConvertCommand: one Bundle a line on stdout; a message with no
// mapping named on stderr with exit code 1, the others still converted.
func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	two := filepath.Join(dir, "two.hl7")
	require.NoError(t, os.WriteFile(two, []byte(
		"MSH|^~\\&|A|B|C|D|20260101||ADT^A04|1|P|2.5\rPID|1||1^^^H^MR||Doe^Jo\r"+
			"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|2|P|2.5\rPID|1||1^^^H^MR||Doe^Jo\rOBR|1||F1|2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||98|mg/dL^^UCUM|||||F\r"), 0o644))
	out, errOut, code := runCmd(t, "convert", "--to", "fhir", two)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "one Bundle a line")
	for _, l := range lines {
		var b map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &b))
		assert.Equal(t, "Bundle", b["resourceType"])
	}
	assert.Contains(t, lines[1], `"valueQuantity":{"value":98,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}`)

	qry := filepath.Join(dir, "qry.hl7")
	require.NoError(t, os.WriteFile(qry, []byte("MSH|^~\\&|A|B|C|D|20260101||QRY^Q01|3|P|2.3\r"), 0o644))
	out, errOut, code = runCmd(t, "convert", "--to", "fhir", "--bundle", "collection", qry, two)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "qry.hl7 #1: not converted: fhir: no FHIR mapping for message type QRY^Q01")
	assert.Equal(t, 2, strings.Count(out, `"type":"collection"`))

	_, errOut, code = runCmd(t, "convert", "--to", "cda", two)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "only fhir")
}

// route test shows the Bundle a fhir destination would receive, indented;
// --out writes it as sent.
func TestRouteTestShowsBundle(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`
listeners: [{name: adt, addr: "127.0.0.1:0"}]
routes: [{name: to-ehr, to: [ehr]}]
destinations: [{name: ehr, type: fhir, url: "https://ehr.example/fhir"}]
`), 0o644))
	msg := filepath.Join(dir, "adt.hl7")
	require.NoError(t, os.WriteFile(msg, []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||1^^^H^MR||Doe^Jo||19800101|F\r"), 0o644))
	out := filepath.Join(dir, "out")
	stdout, stderr, code := runCmd(t, "route", "test", "--config", cfgFile, "--out", out, msg)
	require.Equal(t, 0, code, stdout+stderr)
	assert.Contains(t, stdout, "-> ehr (route to-ehr, ")
	assert.Contains(t, stdout, "\n     \"resourceType\": \"Bundle\",\n")
	assert.Contains(t, stdout, "\"gender\": \"female\"")
	sent, err := os.ReadFile(filepath.Join(out, "adt-1-ehr.json"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(sent), `{"resourceType":"Bundle",`), "--out writes the Bundle as sent")
}
