package ingest

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const httpToken = "s3cret-token-for-tests"

// httpSource serves an HTTP source on 127.0.0.1 over a fresh embedded
// JetStream and returns its URL: a flush per message, as a listener.
func httpSource(t testing.TB, cfg config.SourceConfig, log zerolog.Logger) (string, *store.NATS) {
	return httpSourceWith(t, cfg, log, false)
}

// httpSourceWith is httpSource, with one flush per request when perRequest
// (as serve runs it).
func httpSourceWith(t testing.TB, cfg config.SourceConfig, log zerolog.Logger, perRequest bool) (string, *store.NATS) {
	t.Helper()
	url, n, _ := httpSourceServer(t, cfg, log, perRequest)
	return url, n
}

// httpSourceServer is httpSourceWith, with the source itself.
func httpSourceServer(t testing.TB, cfg config.SourceConfig, log zerolog.Logger, perRequest bool) (string, *store.NATS, *HTTPSource) {
	t.Helper()
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	o, _ := cfg.Options.(*HTTPOptions)
	if o == nil {
		o = &HTTPOptions{}
	}
	cfg.Name, cfg.Type, cfg.Options, o.Path = "webin", "http", o, "/hl7"
	cfg.MaxMessageBytes = config.DefaultMaxMessageBytes
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 4 << 20
	}
	config.SourceTypeDefaults(&cfg)
	committer := n.Committer(2 * time.Second)
	if perRequest {
		committer = n.BatchCommitter(2 * time.Second)
	}
	in := New(cfg.Listener(), committer, log)
	src := &HTTPSource{Config: cfg, Ingest: in, Tokens: map[string]string{"lab": httpToken}, Log: log}
	if perRequest {
		src.Sync = n.Sync
	}
	srv := httptest.NewServer(src.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/hl7", n, src
}

func post(t *testing.T, url, token, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func TestHTTPSourceStoresThenAnswersWithTheACK(t *testing.T) {
	url, n := httpSource(t, config.SourceConfig{}, zerolog.Nop())
	status, h, body := post(t, url, httpToken, ContentTypeER7, fileMsg("H1"))
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, ContentTypeER7, h.Get("Content-Type"))
	ack, err := hl7.ParseAck([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, hl7.AA, ack.Code)
	assert.Equal(t, "H1", ack.ControlID)
	assert.EqualValues(t, 1, streamCount(t, n))

	status, _, body = post(t, url, httpToken, "text/plain; charset=utf-8", fileMsg("H2")+"\n"+fileMsg("H3"))
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 2, strings.Count(body, "MSA|AA|"), "one ACK per message of the body")
	assert.EqualValues(t, 3, streamCount(t, n))
}

func TestHTTPSourceStatusFollowsTheACK(t *testing.T) {
	url, n := httpSource(t, config.SourceConfig{AcceptTypes: []string{"ADT"}}, zerolog.Nop())
	oru := strings.Replace(fileMsg("R1"), "ADT^A08^ADT_A01", "ORU^R01", 1)
	status, _, body := post(t, url, httpToken, ContentTypeER7, oru)
	assert.Equal(t, http.StatusBadRequest, status, "AR: resending will not help")
	assert.Contains(t, body, "MSA|AR|R1")
	assert.Contains(t, body, "ERR|")

	n.Server().Shutdown() // the store goes away: the real failure
	n.Server().WaitForShutdown()
	status, h, body := post(t, url, httpToken, ContentTypeER7, fileMsg("R2"))
	assert.Equal(t, http.StatusServiceUnavailable, status, "AE: resend")
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.Contains(t, body, "MSA|AE|R2")
}

func TestHTTPSourceRefusesWithAReason(t *testing.T) {
	logs := &syncbuf.Buffer{}
	url, n := httpSource(t, config.SourceConfig{Options: &HTTPOptions{MaxBodyBytes: 2048}}, zerolog.New(logs))
	for _, c := range []struct {
		name, token, ctype, body string
		status                   int
		reason                   string
	}{
		{"no token", "", ContentTypeER7, fileMsg("X1"), http.StatusUnauthorized, "bearer token"},
		{"wrong token", "not-the-token-at-all", ContentTypeER7, fileMsg("X2"), http.StatusUnauthorized, "bearer token"},
		{"wrong type", httpToken, "application/json", fileMsg("X3"), http.StatusUnsupportedMediaType, ContentTypeER7},
		{"too large", httpToken, ContentTypeER7, fileMsg("X4") + "NTE|1||" + strings.Repeat("x", 3000) + "\r", http.StatusRequestEntityTooLarge, "2048 bytes"},
		{"not HL7", httpToken, "text/plain", "PID|1||MRN9^^^H^MR||Zyxwquist^Ann\r", http.StatusBadRequest, "not HL7"},
	} {
		status, h, body := post(t, url, c.token, c.ctype, c.body)
		assert.Equal(t, c.status, status, c.name)
		assert.Contains(t, body, c.reason, c.name)
		if status == http.StatusUnauthorized {
			assert.Contains(t, h.Get("WWW-Authenticate"), "Bearer", c.name)
		}
	}
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	status, _, _ := post(t, strings.TrimSuffix(url, "/hl7")+"/other", httpToken, ContentTypeER7, fileMsg("X5"))
	assert.Equal(t, http.StatusNotFound, status)
	assert.EqualValues(t, 0, streamCount(t, n), "nothing refused was stored")
	assert.NotContains(t, logs.String(), "Zyxwquist")
	assert.NotContains(t, logs.String(), httpToken)
}

// BenchmarkHTTPSource: one client POSTing to an HTTP source over
// 127.0.0.1, stored in an embedded JetStream with fsync, one message per
// request and 100 per request (back to back), with a flush per message
// (as before) and one per request (as serve runs it), side by side.
func BenchmarkHTTPSource(b *testing.B) {
	for _, c := range []struct {
		per   int
		flush string
	}{{1, "message"}, {100, "message"}, {1, "request"}, {100, "request"}} {
		per := c.per
		b.Run(fmt.Sprintf("per_request=%d/flush_per=%s", per, c.flush), func(b *testing.B) {
			url, _ := httpSourceWith(b, config.SourceConfig{}, zerolog.Nop(), c.flush == "request")
			client := &http.Client{}
			n := 0
			for b.Loop() {
				var body strings.Builder
				for range per {
					n++
					body.WriteString(strings.Replace(adt, "MSG00001", fmt.Sprintf("H%08d", n), 1))
				}
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body.String()))
				req.Header.Set("Authorization", "Bearer "+httpToken)
				req.Header.Set("Content-Type", ContentTypeER7)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// panicCommitter panics with a value that quotes the message, as a bug
// could.
type panicCommitter struct{ store.Committer }

func (panicCommitter) Commit(_ context.Context, r *store.Received) (store.Stored, error) {
	panic("bad message: " + string(r.Data))
}

// A panic while a request is handled answers 500 with a reason, logs its
// type and stack but never its value, and the source goes on.
func TestHTTPSourceRecoversAPanicWithoutLoggingItsValue(t *testing.T) {
	var logs syncbuf.Buffer
	cfg := config.SourceConfig{Name: "webin", Type: "http", MaxMessageBytes: config.DefaultMaxMessageBytes, Options: &HTTPOptions{Path: "/hl7", MaxBodyBytes: 1 << 20}}
	src := &HTTPSource{Config: cfg, Ingest: New(cfg.Listener(), panicCommitter{}, zerolog.Nop()), Tokens: map[string]string{"lab": httpToken},
		Log: zerolog.New(&logs)}
	srv := httptest.NewServer(src.Handler())
	defer srv.Close()
	for range 2 {
		status, _, body := post(t, srv.URL+"/hl7", httpToken, ContentTypeER7, adt)
		assert.Equal(t, http.StatusInternalServerError, status)
		assert.Contains(t, body, "resend")
	}
	assert.Contains(t, logs.String(), `"panic":"string"`)
	assert.Contains(t, logs.String(), `"stack"`)
	assert.NotContains(t, logs.String(), "Müller")
	assert.NotContains(t, logs.String(), "bad message")
}

// With Sync, a request's messages are stored without a flush each and
// acknowledged after one flush; if the flush fails, every message of the
// request is answered AE (503), to be resent, and counted as AE, and
// its journey says AE too.
func TestHTTPSourceAcknowledgesARequestAfterOneFlush(t *testing.T) {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	cfg := config.SourceConfig{Name: "webin", Type: "http", MaxMessageBytes: config.DefaultMaxMessageBytes, Options: &HTTPOptions{Path: "/hl7", MaxBodyBytes: 1 << 20}}
	acks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"source", "code"})
	in := New(cfg.Listener(), n.BatchCommitter(2*time.Second), zerolog.Nop())
	in.Metrics = &Metrics{Received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"source"}), Acks: acks,
		StoreSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "s"}, []string{"source"}), ReusedIDs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "u"}, []string{"source"})}
	in.Events = store.NewEventLog(n.JetStream, zerolog.Nop())
	ctx, stop := context.WithCancel(context.Background())
	logged := make(chan error, 1)
	go func() { logged <- in.Events.Run(ctx) }()
	var syncs atomic.Int64
	var failSync atomic.Bool
	src := &HTTPSource{Config: cfg, Ingest: in, Tokens: map[string]string{"lab": httpToken}, Log: zerolog.Nop(),
		Sync: func(ctx context.Context) error {
			syncs.Add(1)
			if failSync.Load() {
				return errors.New("disk flush failed")
			}
			return n.Sync(ctx)
		}}
	srv := httptest.NewServer(src.Handler())
	defer srv.Close()

	status, _, body := post(t, srv.URL+"/hl7", httpToken, ContentTypeER7, fileMsg("B1")+fileMsg("B2")+fileMsg("B3"))
	assert.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 3, strings.Count(body, "MSA|AA|"))
	assert.EqualValues(t, 1, syncs.Load(), "one flush for the request")
	assert.EqualValues(t, 3, streamCount(t, n))

	failSync.Store(true)
	status, hdr, body := post(t, srv.URL+"/hl7", httpToken, ContentTypeER7, fileMsg("B4")+fileMsg("B5"))
	assert.Equal(t, http.StatusServiceUnavailable, status, body)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	assert.Equal(t, 2, strings.Count(body, "MSA|AE|"))
	assert.NotContains(t, body, "MSA|AA|")
	assert.Equal(t, 3.0, testutil.ToFloat64(acks.WithLabelValues("webin", "AA")))
	assert.Equal(t, 2.0, testutil.ToFloat64(acks.WithLabelValues("webin", "AE")))

	failSync.Store(false) // the resend: recognised, acknowledged
	status, _, body = post(t, srv.URL+"/hl7", httpToken, ContentTypeER7, fileMsg("B4")+fileMsg("B5"))
	assert.Equal(t, http.StatusOK, status, body)
	assert.EqualValues(t, 5, streamCount(t, n), "stored once each")

	stop()
	require.NoError(t, <-logged)
	var acked []string
	for _, e := range testkit.ReadEvents(t, n.JetStream) {
		require.Equal(t, wire.EventReceived, e.Kind)
		acked = append(acked, fmt.Sprintf("%d:%s:%t", e.Message, e.Ack, e.Duplicate))
	}
	assert.Equal(t, []string{"1:AA:false", "2:AA:false", "3:AA:false", "4:AE:false", "5:AE:false", "4:AA:true", "5:AA:true"}, acked,
		"each received event has the ACK its sender got")
}

// Requests at once are bounded (max_requests): one more is answered 503
// with Retry-After before its body is read, so 20 senders of 15 MB bodies
// cannot make the source hold 300 MB; the one in flight goes on, and a
// sender that comes back after it is taken.
func TestHTTPSourceBoundsRequestsInFlight(t *testing.T) {
	url, n, src := httpSourceServer(t, config.SourceConfig{Options: &HTTPOptions{MaxRequests: 1}}, zerolog.Nop(), false)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+httpToken)
	req.Header.Set("Content-Type", ContentTypeER7)
	first := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	msg := testkit.ADT
	_, err = pw.Write([]byte(msg[:20])) // the first request is being read: it holds the one slot
	require.NoError(t, err)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if len(src.inFlight) != 1 {
			return fmt.Errorf("waiting for the first request to take the one slot")
		}
		return nil
	})

	code, h, body := post(t, url, httpToken, ContentTypeER7, strings.Replace(msg, "MSG00001", "MSG00002", 1))
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Equal(t, "1", h.Get("Retry-After"))
	assert.Contains(t, body, "1 requests at once")

	_, err = pw.Write([]byte(msg[20:]))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	assert.Equal(t, http.StatusOK, <-first, "the request in flight goes on")
	code, _, body = post(t, url, httpToken, ContentTypeER7, strings.Replace(msg, "MSG00001", "MSG00002", 1))
	assert.Equal(t, http.StatusOK, code, body)
	assert.EqualValues(t, 2, streamCount(t, n))
}
