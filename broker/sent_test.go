package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The message page shows, per copy, the payload as each destination
// sent it and what the downstream answered: the ACK of an MLLP
// receiver, an HTTP server's status and body (also when it refused the
// message for good), a FHIR server's transaction response, the file a
// copy was written to; the journey itself stays free of content.
func TestTheMessagePageShowsWhatWasSentAndWhatCameBack(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"visit-7"}`)
	}))
	defer web.Close()
	picky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "PID-8 is not a sex we know\xff")
	}))
	defer picky.Close()
	fhirSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Entry []any }
		_ = json.NewDecoder(r.Body).Decode(&b)
		w.Header().Set("Content-Type", "application/fhir+json")
		entries := strings.TrimSuffix(strings.Repeat(`{"response":{"status":"201 Created"}},`, len(b.Entry)), ",")
		_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"transaction-response","entry":[`+entries+`]}`)
	}))
	defer fhirSrv.Close()
	files := t.TempDir()

	cfg := testkit.Config(t)
	cfg.DataDir = t.TempDir()
	cfg.History = config.HistoryConfig{Enabled: true}
	cfg.Listeners = []config.ListenerConfig{{Name: "adt", Addr: "127.0.0.1:0"}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr", "web", "fhir", "files", "picky"}}}
	cfg.Destinations = []config.DestinationConfig{
		{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast},
		{Name: "web", Type: "http", Options: &delivery.HTTPOptions{URL: web.URL}, Encoding: "json", Retry: fast},
		{Name: "fhir", Type: "fhir", Options: &delivery.FHIROptions{URL: fhirSrv.URL}, Retry: fast},
		{Name: "files", Type: "file", Options: &delivery.FileOptions{Dir: files}, Terminator: "crlf"},
		{Name: "picky", Type: "http", Options: &delivery.HTTPOptions{URL: picky.URL}, Retry: fast},
	}
	p := startPipeline(t, cfg)
	msg := adtMsg("SENT-1", "M77", "A01")
	require.Equal(t, hl7.AA, p.send(t, "adt", msg))

	var v history.View
	testkit.WaitFor(t, 20*time.Second, func() error {
		page, err := p.ops.Index.Search(context.Background(), history.Filter{ControlID: "SENT-1"})
		if err != nil || len(page.Items) != 1 {
			return fmt.Errorf("SENT-1 not indexed yet (%v)", err)
		}
		id := page.Items[0].ID
		var seq uint64
		fmt.Sscan(id, &seq)
		if v, err = p.ops.Show(context.Background(), seq); err != nil {
			return err
		}
		for _, c := range v.Copies {
			if c.Status != history.StatusDelivered && c.Status != history.StatusDeadLettered {
				return fmt.Errorf("copy for %s is %s", c.Destination, c.Status)
			}
		}
		if len(v.Copies) != 5 {
			return fmt.Errorf("%d of 5 copies", len(v.Copies))
		}
		return nil
	})
	copies := map[string]history.CopyContent{}
	for _, c := range v.Copies {
		copies[c.Destination] = c
	}

	emrCopy := copies["emr"]
	assert.Equal(t, msg, emrCopy.Sent, "MLLP sends the copy as queued")
	assert.Contains(t, emrCopy.Response, "MSA|AA|SENT-1", "the receiver's ACK, whole")
	assert.True(t, strings.HasPrefix(emrCopy.Response, "MSH|"), "the ACK as it came: %q", emrCopy.Response)

	webCopy := copies["web"]
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(webCopy.Sent), &doc), "the JSON encoding as posted: %s", webCopy.Sent)
	assert.Contains(t, webCopy.Sent, "Müller")
	assert.Equal(t, "HTTP 201 Created\nContent-Type: application/json\n\n{\"id\":\"visit-7\"}", webCopy.Response)

	fhirCopy := copies["fhir"]
	assert.Contains(t, fhirCopy.Sent, `"resourceType":"Bundle"`, "the Bundle as posted")
	assert.Contains(t, fhirCopy.Response, "HTTP 200 OK")
	assert.Contains(t, fhirCopy.Response, "transaction-response")

	fileCopy := copies["files"]
	require.True(t, strings.HasPrefix(fileCopy.SentName, files), "the file written: %q", fileCopy.SentName)
	written, err := os.ReadFile(fileCopy.SentName)
	require.NoError(t, err)
	assert.Equal(t, string(written), fileCopy.Sent, "the page shows the bytes the file holds (CR LF)")
	assert.Contains(t, fileCopy.Sent, "\r\n")

	pickyCopy := copies["picky"]
	assert.Equal(t, history.StatusDeadLettered, pickyCopy.Status)
	assert.Equal(t, msg, pickyCopy.Sent)
	assert.Equal(t, "base64", pickyCopy.ResponseEncoding, "a body that is not UTF-8")
	body, err := base64.StdEncoding.DecodeString(pickyCopy.Response)
	require.NoError(t, err)
	assert.Contains(t, string(body), "HTTP 400 Bad Request")
	assert.Contains(t, string(body), "PID-8 is not a sex we know")

	j, _ := json.Marshal(v.Journey)
	assert.Contains(t, string(j), `"sent_name":`, "the journey names the file written")
	assert.NotContains(t, string(j), `"sent":`, "the journey carries no payload")
	assert.NotContains(t, string(j), `"response":`, "the journey carries no response")
	assert.NotContains(t, string(j), "Müller")
	assert.NotContains(t, string(j), "visit-7")
}
