package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const oru = "MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|C1|P|2.5\rPID|1||P1\r"

// Every type is registered with the config and has a maker: one
// registration does both.
func TestTypesAreRegistered(t *testing.T) {
	assert.Equal(t, []string{"email", "fhir", "file", "http", "mllp", "mysql", "postgres", "sftp"}, config.DestinationTypes())
	for _, name := range config.DestinationTypes() {
		assert.NotNil(t, makers[name], name)
	}
	_, err := New(config.DestinationConfig{Name: "x", Type: "pigeon"}, nil)
	assert.ErrorContains(t, err, `no destination type "pigeon"`)
}

// A file destination, through New, writes each message as its
// destination asks: JSON in a .json file named by sequence and control ID.
func TestNewFileDestinationEncodes(t *testing.T) {
	dir := t.TempDir()
	d, err := New(config.DestinationConfig{Name: "disk", Type: "file", Options: &FileOptions{Dir: dir}, Encoding: "json"}, nil)
	require.NoError(t, err)
	defer d.Close()
	res := d.Deliver(context.Background(), Message{Data: []byte(oru), ControlID: "C1", InSeq: 7})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	b, err := os.ReadFile(filepath.Join(dir, "0000000007-C1.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"C1"`)
}

// An HTTP destination maps statuses to outcomes: 2xx delivered, 503
// retried, 400 rejected; the control ID goes in a header, never a value.
func TestNewHTTPDestinationOutcomes(t *testing.T) {
	status := http.StatusOK
	var gotID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID = r.Header.Get("X-HL7-Control-Id")
		w.WriteHeader(status)
	}))
	defer srv.Close()
	dc := config.DestinationConfig{Name: "web", Type: "http", Options: &HTTPOptions{URL: srv.URL + "/in?token=abc"}, Encoding: "er7", Timeout: 5 * time.Second}
	config.DestinationTypeDefaults(&dc)
	d, err := New(dc, nil)
	require.NoError(t, err)
	defer d.Close()
	for _, tc := range []struct {
		status int
		want   Outcome
	}{{200, Delivered}, {503, Retry}, {400, Rejected}} {
		status = tc.status
		res := d.Deliver(context.Background(), Message{Data: []byte(oru), ControlID: "C1"})
		assert.Equal(t, tc.want, res.Outcome, "HTTP %d: %s", tc.status, res.Reason)
	}
	assert.Equal(t, "C1", gotID)
	srv.Close()
	res := d.Deliver(context.Background(), Message{Data: []byte(oru), ControlID: "C1"})
	assert.Equal(t, Retry, res.Outcome)
	assert.NotContains(t, res.Reason, "abc", "the token in the URL is redacted")
}

// A file destination removes the temporary files a crash left behind
// (older than a minute), and leaves a write in progress alone.
func TestFileDestinationRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	stale, fresh := filepath.Join(dir, ".tmp-123"), filepath.Join(dir, ".tmp-456")
	require.NoError(t, os.WriteFile(stale, []byte("half"), 0o640))
	require.NoError(t, os.WriteFile(fresh, []byte("half"), 0o640))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))
	d, err := New(config.DestinationConfig{Name: "disk", Type: "file", Options: &FileOptions{Dir: dir, FileName: DefaultFileName}, Encoding: "er7"}, nil)
	require.NoError(t, err)
	defer d.Close()
	_, err = os.Stat(stale)
	assert.True(t, os.IsNotExist(err), "the crash's leftover is removed")
	_, err = os.Stat(fresh)
	assert.NoError(t, err, "a write in progress is left alone")
}
