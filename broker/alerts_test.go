package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookSink is a webhook receiver on 127.0.0.1.
type hookSink struct {
	mu     sync.Mutex
	bodies []map[string]any
	srv    *httptest.Server
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// statuses are "rule status" of what was posted, in order.
func (h *hookSink) statuses() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		out = append(out, fmt.Sprintf("%v %v", b["rule"], b["status"]))
	}
	return out
}

// A destination down: the failing rule fires within its for plus an
// evaluation; the API lists it, /metrics says so, the status shows it
// retrying with its last error and the age of its oldest message, and
// (admin.not_ready_when_failing) /readyz answers 503; when it comes back,
// the rule resolves, the last error is gone and the broker is ready.
func TestDestinationDownFiresAndRecoveryResolves(t *testing.T) {
	hook := newHookSink(t)
	emrAddr := freeAddr(t) // nothing listens yet
	cfg := baseConfig(t)
	cfg.Admin.Addr, cfg.Admin.NotReadyWhenFailing = "127.0.0.1:0", time.Second
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emrAddr},
		Retry: config.RetryConfig{Backoff: []time.Duration{50 * time.Millisecond}}}}
	cfg.Alerts = config.AlertsConfig{Interval: time.Second, ConsoleURL: "https://broker.example.org/ui/",
		Notifiers: []config.NotifierConfig{{Name: "oncall", Type: "webhook", URL: hook.srv.URL}},
		Rules:     []config.AlertRuleConfig{{Name: "emr-down", Kind: "failing", Target: "emr", For: 2 * time.Second, Notify: []string{"oncall"}}}}
	p := startPipeline(t, cfg)
	p.tokens.Set([]admin.Token{admin.NewToken("vera", admin.RoleViewer, "viewer-token-0123456789")})
	base := "http://" + p.AdminAddr().String()
	get := func(path string) string {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer viewer-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		return string(b)
	}

	require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("AL-1", "MRN1", "A01")))
	began := time.Now()
	testkit.WaitFor(t, 15*time.Second, func() error {
		if s := hook.statuses(); !slices.Contains(s, "emr-down firing") {
			return fmt.Errorf("waiting for emr-down to fire; posted: %v", s)
		}
		return nil
	})
	assert.Less(t, time.Since(began), 2*time.Second+3*time.Second, "for (2s) plus an evaluation (1s) and the first failures")
	var page struct {
		Items []struct{ Rule, Status, Target, Since string } `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(get("/api/v1/alerts")), &page))
	require.Len(t, page.Items, 1)
	assert.Equal(t, "emr-down", page.Items[0].Rule)
	assert.Equal(t, "firing", page.Items[0].Status)
	assert.Equal(t, "emr", page.Items[0].Target)
	_, err := time.Parse(time.RFC3339, page.Items[0].Since)
	assert.NoError(t, err, "since is a time")
	_, metrics := testkit.Get(t, base+"/metrics")
	assert.Contains(t, metrics, `hl7broker_alert_firing{rule="emr-down"} 1`)
	assert.Regexp(t, `hl7broker_destination_oldest_age_seconds\{destination="emr"\} [1-9]`, metrics)
	var st admin.Status
	require.NoError(t, json.Unmarshal([]byte(get("/api/v1/status")), &st))
	require.NotEmpty(t, st.Destinations[0].LastError)
	assert.Equal(t, "retrying", st.Destinations[0].State)
	assert.Contains(t, st.Destinations[0].StateReason, "connection refused")
	code, ready := testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, ready)
	assert.Contains(t, ready, "destination emr: failing for")

	newEndpoint(t, emrAddr, nil) // the EMR is back
	testkit.WaitFor(t, 15*time.Second, func() error {
		if s := hook.statuses(); !slices.Contains(s, "emr-down resolved") {
			return fmt.Errorf("waiting for emr-down to resolve; posted: %v", s)
		}
		return nil
	})
	assert.Equal(t, []string{"emr-down firing", "emr-down resolved"}, hook.statuses(), "told once each")
	st = admin.Status{}
	require.NoError(t, json.Unmarshal([]byte(get("/api/v1/status")), &st))
	assert.Empty(t, st.Destinations[0].LastError, "cleared by the delivery that succeeded")
	assert.Equal(t, "running", st.Destinations[0].State)
	code, ready = testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code, ready)
	_, metrics = testkit.Get(t, base+"/metrics")
	assert.Contains(t, metrics, `hl7broker_alert_firing{rule="emr-down"} 0`)
	assert.Regexp(t, `hl7broker_destination_last_success_timestamp_seconds\{destination="emr"\} \d`, metrics)
	assert.Regexp(t, `hl7broker_source_last_message_timestamp_seconds\{source="adt"\} \d`, metrics)
}

// Every metric and label deploy/prometheus/alerts.yml and
// deploy/grafana/hl7broker.json name is one a running broker exports.
func TestDeployedRulesAndDashboardNameExportedMetrics(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	pki := testpki.New(t)
	cfg := baseConfig(t)
	cfg.Listeners = append(cfg.Listeners, config.ListenerConfig{Name: "secure", Addr: "127.0.0.1:0",
		TLS: config.TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}}) // hl7broker_certificate_expiry_timestamp_seconds
	cfg.Admin.Addr = "127.0.0.1:0"
	cfg.Routes = []config.RouteConfig{{Name: "a01", To: []string{"emr", "down"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}},
		{Name: "down", Type: "mllp", Options: &delivery.MLLPOptions{Addr: freeAddr(t)}, Retry: fast}}
	cfg.Alerts = config.AlertsConfig{Interval: time.Second, Notifiers: []config.NotifierConfig{{Name: "n", Type: "webhook", URL: "http://127.0.0.1:9/"}},
		Rules: []config.AlertRuleConfig{{Name: "r", Kind: "storage", Notify: []string{"n"}}}}
	p := startPipeline(t, cfg)
	p.tokens.Set([]admin.Token{admin.NewToken("vera", admin.RoleViewer, "viewer-token-0123456789")})
	base := "http://" + p.AdminAddr().String()
	require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("DM-1", "MRN1", "A01")))
	require.Equal(t, hl7.AR, p.send(t, "adt", oruMsg("DM-2")))
	testkit.WaitFor(t, 20*time.Second, func() error {
		if len(emr.got()) != 1 || p.count("down", "dead_lettered") != 1 {
			return fmt.Errorf("waiting for one delivery to emr and one dead letter of down: %d, %d", len(emr.got()), p.count("down", "dead_lettered"))
		}
		return nil
	})
	testkit.WaitFor(t, 10*time.Second, func() error {
		if _, m := testkit.Get(t, base+"/metrics"); !strings.Contains(m, "hl7broker_alert_firing") {
			return fmt.Errorf("waiting for the first evaluation")
		}
		return nil
	})
	_, metrics := testkit.Get(t, base+"/metrics")
	exported := map[string][]string{} // name -> label names
	for _, m := range regexp.MustCompile(`(?m)^(hl7broker_[a-z_]+|process_[a-z_]+)(\{[^}]*\})? `).FindAllStringSubmatch(metrics, -1) {
		for _, l := range regexp.MustCompile(`([a-z_]+)="`).FindAllStringSubmatch(m[2], -1) {
			exported[m[1]] = append(exported[m[1]], l[1])
		}
		if _, ok := exported[m[1]]; !ok {
			exported[m[1]] = nil
		}
	}
	for _, file := range []string{"../deploy/prometheus/alerts.yml", "../deploy/grafana/hl7broker.json"} {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		text := string(raw)
		names := regexp.MustCompile(`hl7broker_[a-z_]+|process_resident_memory_bytes`).FindAllString(text, -1)
		require.NotEmpty(t, names, file)
		for _, name := range names {
			_, ok := exported[name]
			assert.True(t, ok, "%s names %s, which the broker does not export", file, name)
		}
		for _, m := range regexp.MustCompile(`(hl7broker_[a-z_]+)\{([^}]*)\}`).FindAllStringSubmatch(text, -1) {
			for _, l := range regexp.MustCompile(`([a-z_]+)\s*=~?\s*\\?"`).FindAllStringSubmatch(m[2], -1) {
				if l[1] == "instance" {
					continue // Prometheus adds it
				}
				assert.Contains(t, exported[m[1]], l[1], "%s selects %s by %s, a label it does not have", file, m[1], l[1])
			}
		}
		for _, m := range regexp.MustCompile(`(?:by|on)\s*\(([a-z_, ]+)\)\s*\(?\s*(?:[a-z_]+\()?(hl7broker_[a-z_]+)`).FindAllStringSubmatch(text, -1) {
			for _, l := range strings.Split(m[1], ",") {
				if l = strings.TrimSpace(l); l != "le" && l != "instance" {
					assert.Contains(t, exported[strings.TrimSuffix(m[2], "_bucket")+map[bool]string{true: "_bucket"}[strings.HasSuffix(m[2], "_bucket")]], l,
						"%s groups %s by %s, a label it does not have", file, m[2], l)
				}
			}
		}
	}
}

// Two brokers on one NATS: the one that holds the lease evaluates the
// rules on the whole cluster's facts and notifies once. The lab feed goes
// only to the other broker, so the leader sees the lab's messages only
// through the facts that broker shares: lab-silent must stay quiet, while
// emr-down (a destination nobody listens at) fires once, not twice.
func TestTwoBrokersNotifyOnceAndSeeEachOthersTraffic(t *testing.T) {
	hook := newHookSink(t)
	url := testkit.ExternalNATS(t)
	emrAddr := freeAddr(t)
	cfgFor := func() *config.Config {
		cfg := baseConfig(t)
		cfg.NATS.URL = url
		cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
		cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emrAddr},
			Retry: config.RetryConfig{Backoff: []time.Duration{50 * time.Millisecond}}}}
		cfg.Alerts = config.AlertsConfig{Interval: time.Second,
			Notifiers: []config.NotifierConfig{{Name: "oncall", Type: "webhook", URL: hook.srv.URL}},
			Rules: []config.AlertRuleConfig{
				{Name: "emr-down", Kind: "failing", Target: "emr", For: time.Second, Notify: []string{"oncall"}},
				{Name: "lab-silent", Kind: "silent", Target: "lab", For: 4 * time.Second, Notify: []string{"oncall"}},
			}}
		return cfg
	}
	p1 := startPipeline(t, cfgFor())
	p2 := startPipeline(t, cfgFor())
	kv, err := p1.nats.JetStream.KeyValue(context.Background(), wire.StateBucket)
	require.NoError(t, err)
	var leader string
	testkit.WaitFor(t, 10*time.Second, func() error {
		e, err := kv.Get(context.Background(), wire.AlertLeaseKey)
		if err != nil {
			return fmt.Errorf("waiting for a broker to take the alerts lease: %v", err)
		}
		var l struct{ ID string }
		_ = json.Unmarshal(e.Value(), &l)
		leader = l.ID
		return nil
	})
	follower := p2
	if leader == p2.alerts.ID {
		follower = p1
	}
	require.Contains(t, []string{p1.alerts.ID, p2.alerts.ID}, leader)

	for i := range 40 { // 10 s of the lab feed, to the broker that does not lead
		require.Equal(t, hl7.AA, follower.send(t, "lab", oruMsg(fmt.Sprintf("C-%d", i))))
		time.Sleep(250 * time.Millisecond) // the feed's pace, not a wait for a result
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if s := hook.statuses(); !slices.Contains(s, "emr-down firing") {
			return fmt.Errorf("waiting for emr-down to fire; posted: %v", s)
		}
		return nil
	})
	s := hook.statuses()
	assert.Equal(t, 1, strings.Count(strings.Join(s, ","), "emr-down firing"), "one broker notified: %v", s)
	assert.NotContains(t, s, "lab-silent firing", "the leader saw the follower's lab traffic")
}
