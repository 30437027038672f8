package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// JSON in through serve: a web application posts two registrations, one
// without an MRN; the other becomes an HL7 v2 ADT, is stored and reaches
// the EMR; the answer says which document failed and why.
func TestServeTakesJSONDocuments(t *testing.T) {
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	addr := freePort(t)
	tokenFile := filepath.Join(t.TempDir(), "portal.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("portal-token-0123456789\n"), 0o600))
	stop, stderr := startServe(t, fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
sources:
  - name: webreg
    type: http
    addr: "%s"
    path: /registrations
    tokens: [{name: portal, token_file: %s}]
    format: json
    script: |
      var p = msg.patient;
      if (!p || !p.mrn) { throw new Error('no patient.mrn'); }
      return 'MSH|^~\\&|WEBREG|HOSP|BROKER|HOSP|20260114081530||ADT^A04^ADT_A01|' + msg.id + '|P|2.5.1\nEVN|A04|20260114081500\nPID|1||' +
        p.mrn + '^^^HOSP^MR||' + p.family + '^' + p.given + '\nPV1|1|O';
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s"}]
`, t.TempDir(), addr, tokenFile, downstream))
	defer stop()
	waitListening(t, addr, "the HTTP source")
	req, err := http.NewRequest("POST", "http://"+addr+"/registrations", strings.NewReader(
		`[{"id": "W1", "patient": {"mrn": "M1", "family": "Quimby", "given": "Ann"}}, {"id": "W2", "patient": {}}]`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer portal-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
	assert.JSONEq(t, `{"results": [{"index": 0, "ack": "AA", "control_id": "W1"}, {"index": 1, "error": "script source webreg script line 2:27: uncaught Error"}]}`, string(body))
	require.Eventually(t, func() bool { names, _ := received(t, outDir); return len(names) == 1 }, 10*time.Second, 10*time.Millisecond,
		"waiting for W1 at the EMR; %s", stderr)
	_, contents := received(t, outDir)
	assert.Contains(t, string(contents[0]), "PID|1||M1^^^HOSP^MR||Quimby^Ann\r")
	assert.NotContains(t, stderr.String(), "Quimby", "no value in the log")
}
