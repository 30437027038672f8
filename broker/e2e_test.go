package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/transforms"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// endpoint is a downstream MLLP system that records what it receives and
// answers with codes from answer (AA when it returns "").
type endpoint struct {
	mu       sync.Mutex
	received [][]byte
	answer   func(n int, msg []byte) hl7.Outcome
	srv      *mllp.Server
	addr     string
}

func newEndpoint(t *testing.T, addr string, answer func(n int, msg []byte) hl7.Outcome) *endpoint {
	t.Helper()
	e := &endpoint{answer: answer}
	e.srv = &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		m, err := hl7.Parse(frame)
		if err != nil {
			return hl7.BuildRejectAck(frame, hl7.AckOptions{})
		}
		e.mu.Lock()
		n := len(e.received)
		outcome := hl7.Accepted
		if e.answer != nil {
			outcome = e.answer(n, frame)
		}
		if outcome == hl7.Accepted {
			e.received = append(e.received, append([]byte(nil), frame...))
		}
		e.mu.Unlock()
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: outcome, Mode: hl7.AckModeOriginal})
	})}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	e.addr = ln.Addr().String()
	go func() { _ = e.srv.Serve(ln) }()
	t.Cleanup(func() { _ = e.srv.Close() })
	return e
}

func (e *endpoint) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, r := range e.received {
		out = append(out, string(r))
	}
	return out
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pipeline is a started broker with hooks counting outcomes.
type pipeline struct {
	*Broker
	outcomes sync.Map // destination/outcome -> *atomic.Int64
	dlq      chan nats.Header
	logs     *syncbuf.Buffer
}

func (p *pipeline) count(dest, outcome string) int64 {
	v, _ := p.outcomes.LoadOrStore(dest+"/"+outcome, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func startPipeline(t *testing.T, cfg *config.Config) *pipeline {
	t.Helper()
	return startPipelineWithHooks(t, cfg, Hooks{})
}

// startPipelineWithHooks is startPipeline with the test's own hooks.
func startPipelineWithHooks(t *testing.T, cfg *config.Config, hooks Hooks) *pipeline {
	t.Helper()
	p := &pipeline{dlq: make(chan nats.Header, 100), logs: &syncbuf.Buffer{}}
	cfg.ApplyDefaults()
	require.Empty(t, cfg.Validate())
	b, err := Start(context.Background(), cfg, zerolog.New(p.logs).Level(zerolog.DebugLevel), Hooks{
		OnRouted: hooks.OnRouted,
		OnReload: hooks.OnReload,
		OnDone: func(dest, outcome string, h nats.Header) {
			v, _ := p.outcomes.LoadOrStore(dest+"/"+outcome, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			if outcome == "dead_lettered" {
				p.dlq <- h
			}
			if hooks.OnDone != nil {
				hooks.OnDone(dest, outcome, h)
			}
		},
	})
	require.NoError(t, err)
	p.Broker = b
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return p
}

func (p *pipeline) send(t *testing.T, listener, msg string) hl7.AckCode {
	t.Helper()
	c := &mllp.Client{Addr: p.Addr(listener).String()}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte(msg))
	require.NoError(t, err)
	ack, err := hl7.ParseAck(reply)
	require.NoError(t, err)
	return ack.Code
}

func adtMsg(id, mrn, event string) string {
	return fmt.Sprintf("MSH|^~\\&|REGADT|MCM|IFENG|SUNNYVALE|20260114081530||ADT^%s^ADT_A01|%s|P|2.5.1\rEVN|%s|20260114081500\rPID|1||%s^^^MCM^MR||Müller^José||19610615|M\r", event, id, event, mrn)
}

func oruMsg(id string) string {
	return "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01^ORU_R01|" + id + "|P|2.5.1\rPID|1||P7^^^LAB^MR||Jones^Mary||19700101|F\rOBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|||||F\r"
}

func baseConfig(t *testing.T) *config.Config {
	c := testkit.Config(t)
	c.Listeners = []config.ListenerConfig{{Name: "adt", Addr: "127.0.0.1:0", AcceptTypes: []string{"ADT"}}, {Name: "lab", Addr: "127.0.0.1:0"}}
	return c
}

var emrName = "EMR"

var fast = config.RetryConfig{MaxAttempts: 3, Backoff: []time.Duration{10 * time.Millisecond}}

func TestEndToEndRoutesAndDelivers(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	archive := t.TempDir()
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{
		{Name: "adt", From: []string{"adt"}, When: config.WhenConfig{Type: []string{"ADT"}, Event: []string{"A01", "A08"}}, To: []string{"emr"}},
		{Name: "results", From: []string{"lab"}, When: config.WhenConfig{Type: []string{"ORU"}}, To: []string{"emr", "archive"},
			Transform: []transforms.Spec{{Op: "set", Options: &transforms.SetOptions{Set: "MSH-5", Value: &emrName}}}},
	}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}, {Name: "archive", Type: "file", Options: &delivery.FileOptions{Dir: archive}}}
	p := startPipeline(t, cfg)

	a1, a2, o1 := adtMsg("A-1", "M1", "A01"), adtMsg("A-2", "M1", "A08"), oruMsg("R-1")
	assert.Equal(t, hl7.AA, p.send(t, "adt", a1))
	assert.Equal(t, hl7.AA, p.send(t, "adt", a2))
	assert.Equal(t, hl7.AA, p.send(t, "lab", o1))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("A-3", "M1", "A40")), "stored, then unrouted")

	require.Eventually(t, func() bool { return len(emr.got()) == 3 && p.count("archive", "delivered") == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 3 && p.count("archive", "delivered") == 1`)
	got := emr.got()
	assert.Equal(t, a1, got[0], "no transform: the bytes delivered are the bytes sent")
	assert.Equal(t, a2, got[1], "in stored order")
	assert.Equal(t, strings.Replace(o1, "|EHR|", "|EMR|", 1), got[2], "the transform changed MSH-5 only")
	files, _ := filepath.Glob(filepath.Join(archive, "*.hl7"))
	require.Len(t, files, 1)
	b, _ := os.ReadFile(files[0])
	assert.Equal(t, got[2], string(b))
	assert.True(t, strings.HasSuffix(files[0], "-R-1.hl7"))
	testkit.WaitFor(t, 10*time.Second, func() error { // A-3 is routed after the deliveries above may have finished
		if n := testutil.ToFloat64(p.metrics.unrouted); n != 1 {
			return fmt.Errorf("%v messages counted unrouted, want 1 (A-3)", n)
		}
		return nil
	})
	assert.Contains(t, p.logs.String(), "no route matched: unrouted", "and logged")

	logs := p.logs.String()
	for _, phi := range []string{"Müller", "José", "19610615", "Jones"} {
		assert.NotContains(t, logs, phi, "no PID-5 or PID-7 value in logs")
	}
}

func TestRetryThenDeliverAndRejectToDLQ(t *testing.T) {
	var flakyCalls atomic.Int64
	emr := newEndpoint(t, "", func(_ int, msg []byte) hl7.Outcome {
		switch {
		case strings.Contains(string(msg), "|BAD-1|"):
			return hl7.Rejected
		case strings.Contains(string(msg), "|FLAKY-1|") && flakyCalls.Add(1) == 1:
			return hl7.Errored // AE once: retried
		}
		return hl7.Accepted
	})
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)
	p.send(t, "adt", adtMsg("FLAKY-1", "M1", "A01"))
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "AE, then delivered")
	assert.EqualValues(t, 2, flakyCalls.Load(), "one retry")
	p.send(t, "adt", adtMsg("BAD-1", "M1", "A01"))
	h := <-p.dlq
	assert.Equal(t, "BAD-1", h.Get(wire.HeaderControlID))
	assert.Contains(t, h.Get("HL7-DLQ-Reason"), "rejected: AR")
	assert.Equal(t, "1", h.Get("HL7-DLQ-Attempts"))
	p.send(t, "adt", adtMsg("NEXT-1", "M1", "A01"))
	require.Eventually(t, func() bool { return len(emr.got()) == 2 }, 10*time.Second, 10*time.Millisecond, "the queue moves on after a dead letter")

	s, err := p.NATS().JetStream.Stream(context.Background(), wire.StreamDLQ)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "hl7.dlq.emr")
	require.NoError(t, err)
	assert.Equal(t, adtMsg("BAD-1", "M1", "A01"), string(m.Data), "the dead letter keeps the message")
}

func TestDestinationDownThenUpKeepsOrder(t *testing.T) {
	addr := freeAddr(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: addr}, Timeout: time.Second,
		Retry: config.RetryConfig{MaxAttempts: 1000, Backoff: []time.Duration{20 * time.Millisecond}}}}
	p := startPipeline(t, cfg)
	var sent []string
	for i := range 5 {
		msg := adtMsg(fmt.Sprintf("DOWN-%d", i), "M1", "A08")
		sent = append(sent, msg)
		assert.Equal(t, hl7.AA, p.send(t, "adt", msg), "stored and acknowledged while the destination is down")
	}
	emr := newEndpoint(t, addr, nil)
	require.Eventually(t, func() bool { return len(emr.got()) == 5 }, 15*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 5`)
	assert.Equal(t, sent, emr.got())
}

func TestHTTPDestination(t *testing.T) {
	var calls atomic.Int64
	var got sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-HL7-Control-Id")
		n := calls.Add(1)
		switch {
		case id == "H-503" && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case id == "H-400":
			w.WriteHeader(http.StatusBadRequest)
		default:
			assert.Equal(t, "x-application/hl7-v2+er7", r.Header.Get("Content-Type"))
			assert.Equal(t, "yes", r.Header.Get("X-Test"))
			got.Store(id, true)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"web"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "web", Type: "http", Options: &delivery.HTTPOptions{URL: srv.URL, Headers: map[string]string{"X-Test": "yes"}}, Retry: fast}}
	p := startPipeline(t, cfg)
	p.send(t, "adt", adtMsg("H-503", "M1", "A01"))
	require.Eventually(t, func() bool { _, ok := got.Load("H-503"); return ok }, 10*time.Second, 10*time.Millisecond, "503, then delivered")
	p.send(t, "adt", adtMsg("H-400", "M1", "A01"))
	h := <-p.dlq
	assert.Contains(t, h.Get("HL7-DLQ-Reason"), "400")
}

func TestKeyOrderingAcrossPartitions(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Ordering: "key", PartitionBy: "PID-3.1", Partitions: 4, Retry: fast}}
	p := startPipeline(t, cfg)
	want := map[string][]string{}
	for i := range 40 {
		mrn := fmt.Sprintf("MRN%d", i%5)
		id := fmt.Sprintf("K-%s-%02d", mrn, i)
		want[mrn] = append(want[mrn], id)
		p.send(t, "adt", adtMsg(id, mrn, "A08"))
	}
	require.Eventually(t, func() bool { return len(emr.got()) == 40 }, 15*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 40`)
	per := map[string][]string{}
	for _, raw := range emr.got() {
		m, err := hl7.Parse([]byte(raw))
		require.NoError(t, err)
		mrn, _ := m.Get("PID-3.1")
		per[mrn] = append(per[mrn], m.ControlID())
	}
	assert.Equal(t, want, per, "each patient's messages arrive in order")
}

func TestRestartDeliversWhatWasQueued(t *testing.T) {
	addr := freeAddr(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: addr}, Timeout: time.Second,
		Retry: config.RetryConfig{MaxAttempts: 1000, Backoff: []time.Duration{20 * time.Millisecond}}}}
	cfg.ApplyDefaults()
	logs := &syncbuf.Buffer{}
	b, err := Start(context.Background(), cfg, zerolog.New(logs).Level(zerolog.DebugLevel), Hooks{})
	require.NoError(t, err)
	c := &mllp.Client{Addr: b.Addr("adt").String()}
	for i := range 3 {
		_, err := c.Send(context.Background(), []byte(adtMsg(fmt.Sprintf("Q-%d", i), "M1", "A08")))
		require.NoError(t, err)
	}
	c.Close()
	require.NoError(t, b.Shutdown(context.Background()))

	emr := newEndpoint(t, addr, nil)
	cfg.Listeners[0].Addr, cfg.Listeners[1].Addr = "127.0.0.1:0", "127.0.0.1:0"
	b2, err := Start(context.Background(), cfg, zerolog.New(logs).Level(zerolog.DebugLevel), Hooks{})
	require.NoError(t, err)
	defer b2.Shutdown(context.Background())
	require.Eventually(t, func() bool { return len(emr.got()) == 3 }, 15*time.Second, 10*time.Millisecond, "logs:\n%s", logs)
	assert.Contains(t, emr.got()[0], "|Q-0|")
	assert.Contains(t, emr.got()[2], "|Q-2|")
}

func TestCorpusThroughThePipeline(t *testing.T) {
	const corpus = "../../shared/corpus"
	if _, err := os.Stat(corpus); err != nil {
		t.Skip("corpus not available")
	}
	// Every message of every file that parses, reused control IDs and
	// true resends included: the count of distinct messages acknowledged
	// must equal the count delivered (none acknowledged and dropped).
	var msgs [][]byte
	_ = filepath.WalkDir(corpus, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return nil
		}
		data, _ := os.ReadFile(path)
		if b, err := hl7.SplitBatch(data, hl7.Limits{}); err == nil {
			for _, m := range b.Messages {
				if pm, err := hl7.Parse(m); err == nil && pm.CheckHeader() == nil {
					msgs = append(msgs, m)
				}
			}
		}
		return nil
	})
	require.NotEmpty(t, msgs)
	out := t.TempDir()
	cfg := baseConfig(t)
	cfg.Listeners = []config.ListenerConfig{{Name: "all", Addr: "127.0.0.1:0", MaxMessageBytes: 1 << 20}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"archive"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "archive", Type: "file", Options: &delivery.FileOptions{Dir: out}}}
	p := startPipeline(t, cfg)
	c := &mllp.Client{Addr: p.Addr("all").String()}
	defer c.Close()
	acked := map[string]bool{} // distinct messages acknowledged
	for _, m := range msgs {
		reply, err := c.Send(context.Background(), m)
		require.NoError(t, err)
		ack, err := hl7.ParseAck(reply)
		require.NoError(t, err)
		require.True(t, ack.Positive(), "%s", ack.Text)
		acked[string(m)] = true
	}
	testkit.WaitFor(t, 30*time.Second, func() error {
		if n := p.count("archive", "delivered"); n != int64(len(acked)) {
			return fmt.Errorf("%d of %d distinct acknowledged messages delivered", n, len(acked))
		}
		return nil
	})
	files, _ := filepath.Glob(filepath.Join(out, "*.hl7"))
	assert.Len(t, files, len(acked), "one file per distinct message acknowledged")
	got := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		assert.True(t, acked[string(b)], "%s is a message sent, byte for byte", filepath.Base(f))
		got[string(b)] = true
	}
	assert.Len(t, got, len(acked), "every distinct message acknowledged was delivered")
	t.Logf("%d corpus messages sent, %d distinct, all stored, routed and delivered byte for byte", len(msgs), len(acked))
}

func TestParallelDestinationDeliversEverything(t *testing.T) {
	var inFlight, peak, done atomic.Int64
	release := make(chan struct{})
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, f []byte) []byte {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inFlight.Add(-1)
		done.Add(1)
		m, _ := hl7.Parse(f)
		return hl7.BuildAck(m, hl7.AckOptions{})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: ln.Addr().String()}, Ordering: "parallel", Concurrency: 4, Retry: fast}}
	p := startPipeline(t, cfg)
	for i := range 8 {
		p.send(t, "adt", adtMsg(fmt.Sprintf("P-%d", i), "M1", "A08"))
	}
	require.Eventually(t, func() bool { return peak.Load() == 4 }, 10*time.Second, 5*time.Millisecond, "four deliveries at once")
	close(release)
	require.Eventually(t, func() bool { return done.Load() == 8 && p.count("emr", "delivered") == 8 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `done.Load() == 8 && p.count("emr", "delivered") == 8`)
	assert.EqualValues(t, 4, peak.Load(), "never more than the concurrency")
}

func TestTransformFailureDeadLettersThatMessageOnly(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"emr"}, Transform: []transforms.Spec{
		{Op: "remove_segments", Options: &transforms.RemoveOptions{RemoveSegments: []string{"EVN"}}},
		{Op: "map", Options: &transforms.MapOptions{Map: "PID-3.4", Table: map[string]string{"MCM": "MAIN"}, OnMiss: "reject"}},
	}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)

	unmapped := strings.Replace(adtMsg("T-1", "M1", "A01"), "^^^MCM^", "^^^ELSEWHERE^", 1)
	assert.Equal(t, hl7.AA, p.send(t, "adt", unmapped), "stored: the transform runs after the ACK")
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("T-2", "M2", "A01")))
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 1`)
	got := emr.got()[0]
	assert.Contains(t, got, "|T-2|")
	assert.Contains(t, got, "M2^^^MAIN^MR", "mapped")
	assert.NotContains(t, got, "\rEVN|", "removed")

	s, err := p.NATS().JetStream.Stream(context.Background(), wire.StreamDLQ)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "hl7.dlq._transform")
	require.NoError(t, err)
	assert.Equal(t, unmapped, string(m.Data), "the dead letter keeps the message as received")
	reason := m.Header.Get("HL7-DLQ-Reason")
	assert.Contains(t, reason, "route adt")
	assert.Contains(t, reason, "step 2 (map PID-3.4)")
	assert.NotContains(t, reason, "ELSEWHERE", "no field value in the reason")
	assert.NotContains(t, p.logs.String(), "ELSEWHERE", "nor in the logs")
}

func TestFieldConditionsRouteOnlyFinalResults(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	final := "F"
	cfg.Routes = []config.RouteConfig{{Name: "finals", To: []string{"emr"},
		When: config.WhenConfig{Type: []string{"ORU"}, All: []config.WhenConfig{{Field: "OBX-11", Equals: &final, Over: "all"}}}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	routed := make(chan []string, 10)
	p := startPipelineWithHooks(t, cfg, Hooks{OnRouted: func(_ uint64, dests []string) { routed <- dests }})

	pending := strings.Replace(oruMsg("R-P"), "|||||F\r", "|||||P\r", 1)
	require.NotEqual(t, oruMsg("R-P"), pending)
	assert.Equal(t, hl7.AA, p.send(t, "lab", pending))
	assert.Empty(t, <-routed, "a preliminary result is unrouted")
	assert.Equal(t, hl7.AA, p.send(t, "lab", oruMsg("R-F")))
	assert.Equal(t, []string{"emr"}, <-routed)
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 1`)
	assert.Equal(t, oruMsg("R-F"), emr.got()[0], "untouched bytes stay untouched")
}

func TestDestinationEncodings(t *testing.T) {
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	jsonDir, crlfDir := t.TempDir(), t.TempDir()
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"web", "jsonfiles", "crlf"}}}
	cfg.Destinations = []config.DestinationConfig{
		{Name: "web", Type: "http", Options: &delivery.HTTPOptions{URL: srv.URL}, Encoding: "json", Retry: fast},
		{Name: "jsonfiles", Type: "file", Options: &delivery.FileOptions{Dir: jsonDir}, Encoding: "json"},
		{Name: "crlf", Type: "file", Options: &delivery.FileOptions{Dir: crlfDir}, Terminator: "crlf"},
	}
	p := startPipeline(t, cfg)
	msg := adtMsg("E-1", "M1", "A01")
	assert.Equal(t, hl7.AA, p.send(t, "adt", msg))

	var doc struct {
		Segments []map[string]json.RawMessage `json:"segments"`
	}
	require.NoError(t, json.Unmarshal(<-bodies, &doc))
	require.Len(t, doc.Segments, 3)
	assert.JSONEq(t, `[{"PID.5.1":"Müller","PID.5.2":"José"}]`, string(doc.Segments[2]["PID.5"]))

	require.Eventually(t, func() bool {
		j, _ := filepath.Glob(filepath.Join(jsonDir, "*-E-1.json"))
		c, _ := filepath.Glob(filepath.Join(crlfDir, "*-E-1.hl7"))
		return len(j) == 1 && len(c) == 1
	}, 10*time.Second, 10*time.Millisecond, "E-1 written by both the json and the crlf destination")
	c, _ := filepath.Glob(filepath.Join(crlfDir, "*-E-1.hl7"))
	crlf, err := os.ReadFile(c[0])
	require.NoError(t, err)
	assert.Equal(t, strings.ReplaceAll(msg, "\r", "\r\n"), string(crlf))

	bad := baseConfig(t)
	bad.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: "127.0.0.1:1"}, Encoding: "json"},
		{Name: "web", Type: "http", Options: &delivery.HTTPOptions{URL: srv.URL}, Encoding: "json", Terminator: "lf"}}
	bad.ApplyDefaults()
	keys := map[string]bool{}
	for _, pr := range bad.Validate() {
		keys[pr.Key] = true
	}
	assert.True(t, keys["destinations[0].encoding"], "json is not for mllp")
	assert.True(t, keys["destinations[1].segment_terminator"], "a terminator is for er7")
}
