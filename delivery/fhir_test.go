package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
)

const fhirADT = "MSH|^~\\&|REG|HOSP|EMR|HOSP|20260114081530-0500||ADT^A01^ADT_A01|CTL-9|P|2.5.1\r" +
	"PID|1||4455^^^HOSP^MR||Oakenshield^Thorin||19800102|M\r" +
	"PV1|1|I|4E^412^B\r"

// fhirServer is a FHIR server on 127.0.0.1: it records each request and
// answers with what reply returns.
type fhirServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
}

func newFHIRServer(t *testing.T, reply func(n int, body []byte) (int, string)) *fhirServer {
	s := &fhirServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.bodies = append(s.bodies, body)
		n := len(s.requests)
		s.mu.Unlock()
		status, out := reply(n, body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fhirServer) request(i int) (*http.Request, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i], s.bodies[i]
}

// transactionResponse answers every entry of the posted Bundle with status.
func transactionResponse(body []byte, status func(i int) string) string {
	var b struct{ Entry []any }
	_ = json.Unmarshal(body, &b)
	var entries []string
	for i := range b.Entry {
		entries = append(entries, fmt.Sprintf(`{"response":{"status":%q}}`, status(i)))
	}
	return `{"resourceType":"Bundle","type":"transaction-response","entry":[` + strings.Join(entries, ",") + `]}`
}

func fhirTestDeliverer(t *testing.T, o FHIROptions, d config.DestinationConfig) Deliverer {
	t.Helper()
	d.Name, d.Type, d.Options = "fhir-test", "fhir", &o
	if d.Timeout == 0 {
		d.Timeout = 5 * time.Second
	}
	config.DestinationTypeDefaults(&d)
	dl, err := New(d, nil)
	require.NoError(t, err)
	t.Cleanup(func() { dl.Close() })
	return dl
}

func TestFHIRDestinationOutcomes(t *testing.T) {
	const secretName = "Oakenshield" // a value of the message: never in a reason
	var mode atomic.Value
	mode.Store("ok")
	srv := newFHIRServer(t, func(n int, body []byte) (int, string) {
		switch mode.Load() {
		case "422":
			return 422, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Patient.name ` + secretName + ` is not allowed","expression":["Bundle.entry[1].resource.name[0]"]}]}`
		case "503":
			return 503, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]}`
		case "401":
			return 401, ""
		case "entry-failed":
			return 200, transactionResponse(body, func(i int) string {
				if i == 2 {
					return "412 Precondition Failed"
				}
				return "201 Created"
			})
		}
		return 200, transactionResponse(body, func(int) string { return "201 Created" })
	})
	d := fhirTestDeliverer(t, FHIROptions{URL: srv.URL + "/fhir/", Token: "tok-123"}, config.DestinationConfig{TimeZone: "America/New_York"})
	msg := Message{Data: []byte(fhirADT), ControlID: "CTL-9"}

	res := d.Deliver(context.Background(), msg)
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	req, body := srv.request(0)
	assert.Equal(t, "/fhir", req.URL.Path, "a transaction is posted to the base URL")
	assert.Equal(t, "Bearer tok-123", req.Header.Get("Authorization"))
	assert.Equal(t, "application/fhir+json", req.Header.Get("Content-Type"))
	assert.Contains(t, string(body), `"type":"transaction"`)
	assert.Contains(t, string(body), `"url":"Patient?identifier=urn%3Aid%3AHOSP|4455"`)
	assert.Contains(t, string(body), `"timestamp":"2026-01-14T08:15:30-05:00"`)

	for _, c := range []struct {
		mode    string
		outcome Outcome
		reason  string
	}{
		{"422", Rejected, "HTTP 422 Unprocessable Entity: error processing at Bundle.entry[1].resource.name[0]"},
		{"503", Retry, "HTTP 503 Service Unavailable: error transient"},
		{"401", Retry, "refused the broker's credentials"},
		{"entry-failed", Rejected, "entry 2: 412"},
	} {
		mode.Store(c.mode)
		res := d.Deliver(context.Background(), msg)
		assert.Equal(t, c.outcome, res.Outcome, c.mode)
		assert.Contains(t, res.Reason, c.reason, c.mode)
		assert.NotContains(t, res.Reason, secretName, "%s: the server's diagnostics quote the data", c.mode)
	}

	// A message with no FHIR mapping is rejected, saying why.
	res = d.Deliver(context.Background(), Message{Data: []byte("MSH|^~\\&|A|B|C|D|20260101||QRY^Q01|1|P|2.3\r")})
	assert.Equal(t, Rejected, res.Outcome)
	assert.Contains(t, res.Reason, "no FHIR mapping for message type QRY^Q01")
}

// OAuth 2.0 client credentials: the token endpoint is asked with the
// client's ID and secret, its token is sent, and a new one is fetched when
// it expires.
func TestFHIRDestinationOAuth2(t *testing.T) {
	var issued atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "broker" || secret != "s3cret" || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "system/*.write" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":1}`, n) // expires at once: each request renews
	}))
	t.Cleanup(tokens.Close)
	srv := newFHIRServer(t, func(_ int, body []byte) (int, string) {
		return 200, transactionResponse(body, func(int) string { return "200 OK" })
	})
	secretFile := t.TempDir() + "/secret"
	require.NoError(t, os.WriteFile(secretFile, []byte("s3cret"), 0o600))
	d := fhirTestDeliverer(t, FHIROptions{URL: srv.URL, OAuth2: config.OAuth2Config{
		TokenURL: tokens.URL, ClientID: "broker", ClientSecret: "s3cret", Scopes: []string{"system/*.write"}}}, config.DestinationConfig{})
	msg := Message{Data: []byte(fhirADT)}
	for i := range 2 {
		res := d.Deliver(context.Background(), msg)
		require.Equal(t, Delivered, res.Outcome, res.Reason)
		req, _ := srv.request(i)
		assert.Equal(t, fmt.Sprintf("Bearer tok-%d", i+1), req.Header.Get("Authorization"))
	}

	bad := fhirTestDeliverer(t, FHIROptions{URL: srv.URL, OAuth2: config.OAuth2Config{TokenURL: tokens.URL, ClientID: "broker", ClientSecret: "wrong"}}, config.DestinationConfig{})
	res := bad.Deliver(context.Background(), msg)
	assert.Equal(t, Retry, res.Outcome, "a refused client is retried: the message is not at fault")
	assert.Contains(t, res.Reason, "oauth2")
	assert.NotContains(t, res.Reason, "wrong")
}

// A collection Bundle is stored as a Bundle resource ([base]/Bundle).
func TestFHIRDestinationCollection(t *testing.T) {
	srv := newFHIRServer(t, func(int, []byte) (int, string) { return 201, `{"resourceType":"Bundle","type":"collection"}` })
	d := fhirTestDeliverer(t, FHIROptions{URL: srv.URL}, config.DestinationConfig{FHIRBundle: "collection"})
	res := d.Deliver(context.Background(), Message{Data: []byte(fhirADT)})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	req, body := srv.request(0)
	assert.Equal(t, "/Bundle", req.URL.Path)
	assert.Contains(t, string(body), `"type":"collection"`)
}

// encoding: fhir on a file destination writes the Bundle as a .json file.
func TestFHIREncodingOnFileDestination(t *testing.T) {
	dir := t.TempDir()
	d := config.DestinationConfig{Name: "files", Type: "file", Options: &FileOptions{Dir: dir}, Encoding: "fhir", FHIRBundle: "collection", Timeout: time.Second}
	config.DestinationTypeDefaults(&d)
	dl, err := New(d, nil)
	require.NoError(t, err)
	res := dl.Deliver(context.Background(), Message{Data: []byte(fhirADT), ControlID: "CTL-9", InSeq: 7})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	files, _ := os.ReadDir(dir)
	require.Len(t, files, 1)
	assert.True(t, strings.HasSuffix(files[0].Name(), ".json"), files[0].Name())
	data, _ := os.ReadFile(dir + "/" + files[0].Name())
	assert.True(t, json.Valid(data))
	assert.Contains(t, string(data), `"resourceType":"Bundle","identifier":{"system":"urn:id:REG","value":"CTL-9"},"type":"collection"`)
}

// The config refuses what a fhir destination cannot use, all at once.
func TestFHIRConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(dests string) (*config.Config, error) {
		file := dir + "/c.yaml"
		require.NoError(t, os.WriteFile(file, []byte("data_dir: "+dir+"\nlisteners: [{name: in, addr: \"127.0.0.1:0\"}]\nroutes: [{name: r, to: [ehr]}]\ndestinations:\n"+dests), 0o600))
		return config.Load(file)
	}
	t.Setenv("EHR_TOKEN", "tok")
	cfg, err := load(`  - {name: ehr, type: fhir, url: "https://ehr.example/fhir", token: "${env:EHR_TOKEN}"}` + "\n")
	require.NoError(t, err)
	assert.Equal(t, "fhir", cfg.Destinations[0].Encoding, "a fhir destination sends FHIR")
	assert.Equal(t, "tok", config.OptionsOf[FHIROptions](cfg.Destinations[0]).Token)

	_, err = load(`  - {name: ehr, type: fhir, url: "https://ehr.example/fhir", token: "literal-token", encoding: json}
  - {name: http, type: http, url: "https://x.example", fhir_bundle: collection, time_zone: Mars/Base}
  - {name: mllp, type: mllp, addr: "127.0.0.1:1", encoding: fhir}
  - {name: oa, type: fhir, url: "https://ehr.example/fhir", oauth2: {token_url: "ftp://x", client_secret: "plain"}}
  - {name: tz, type: file, dir: ` + dir + `, encoding: fhir, time_zone: Nowhere/Else, charset: EBCDIC}
  - {name: cs, type: sftp, addr: "127.0.0.1:22", user: u, private_key_file: /nonexistent, dir: /in, charset: 8859/1}
`)
	require.Error(t, err)
	for _, want := range []string{
		"destinations[0].token: give it by reference",
		"destinations[0].encoding: json is not for type fhir, which sends fhir: leave encoding out",
		"destinations[1].fhir_bundle: applies to encoding fhir, not er7",
		"destinations[1].time_zone: applies to encoding fhir, not er7",
		"destinations[2].encoding: fhir is not for type mllp, which sends er7: leave encoding out",
		"destinations[3].oauth2.client_secret: give it by reference",
		"destinations[3].oauth2.token_url: ftp://x is not an http or https URL",
		"destinations[3].oauth2.client_id: client credentials need a client_id",
		"destinations[4].time_zone: \"Nowhere/Else\" is not a time zone name",
		"destinations[4].charset: unsupported character set \"EBCDIC\"",
		"destinations[5].charset: applies to encoding fhir, not er7",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "literal-token")
	assert.NotContains(t, err.Error(), "plain")
}

// charset decodes the stored text when MSH-18 does not name its charset;
// encoding fhir on an http destination sends application/fhir+json.
func TestFHIREncodingCharsetOverHTTP(t *testing.T) {
	srv := newFHIRServer(t, func(int, []byte) (int, string) { return 200, "" })
	d := config.DestinationConfig{Name: "h", Type: "http", Options: &HTTPOptions{URL: srv.URL}, Encoding: "fhir", Charset: "windows-1252", Timeout: time.Second}
	config.DestinationTypeDefaults(&d)
	dl, err := New(d, nil)
	require.NoError(t, err)
	msg := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||1^^^H^MR||M\xfcller^J\xf6rg \x96 Jr\r"
	res := dl.Deliver(context.Background(), Message{Data: []byte(msg)})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	req, body := srv.request(0)
	assert.Equal(t, "application/fhir+json", req.Header.Get("Content-Type"))
	assert.Contains(t, string(body), `"family":"Müller","given":["Jörg – Jr"]`)
}
