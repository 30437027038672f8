package loadtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/store"
	"go.yaml.in/yaml/v3"
)

// CompareResult is what bench --compare prints (--json: as is).
type CompareResult struct {
	Durability   string `json:"durability"`
	Store        string `json:"store"` // "embedded", or the external NATS URLs
	Replicas     int    `json:"replicas"`
	RawMLLP      Result `json:"raw_mllp"`
	RawJetStream Result `json:"raw_jetstream"`
	Broker       Result `json:"broker"`
	// The broker's rate over each ceiling's.
	RatioToRawMLLP      float64 `json:"ratio_to_raw_mllp"`
	RatioToRawJetStream float64 `json:"ratio_to_raw_jetstream"`
	// serve's process, from start to exit: CPU time (user + system) and
	// peak resident memory (0 where the OS does not report it).
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds"`
	BrokerPeakRSSMB  float64 `json:"broker_peak_rss_mb"`
	// The broker again with history.enabled false (no journey events, no
	// index), and what history costs: 1 - broker / this. With Rounds > 1
	// the two alternate (broker first in odd rounds, second in even ones)
	// and Broker and BrokerNoHistory are the rounds of median rate.
	BrokerNoHistory Result  `json:"broker_no_history"`
	HistoryCost     float64 `json:"history_cost"`
	// Every round's rates, and the median CPU time a message of each.
	BrokerRounds         []float64 `json:"broker_rounds"`
	NoHistoryRounds      []float64 `json:"no_history_rounds"`
	BrokerCPUMSPerMsg    float64   `json:"broker_cpu_ms_per_message"`
	NoHistoryCPUMSPerMsg float64   `json:"no_history_cpu_ms_per_message"`
	FailedRounds         int       `json:"failed_rounds"` // broker runs that lost a message or an ACK
}

// Compare measures, in one run with the same connections and messages,
// raw MLLP, raw JetStream publish at the broker's durability and the
// broker (o.Serve in a process of its own); progress goes to logw.
func Compare(ctx context.Context, o Options, logw io.Writer) (CompareResult, error) {
	var r CompareResult
	if o.Connections < 1 || (o.Messages <= 0 && o.Duration <= 0) || o.Patients < 1 {
		return r, errors.New("bench needs --connections of at least 1, --messages or --duration, and --patients of at least 1")
	}
	next, err := messageSource(o)
	if err != nil {
		return r, err
	}
	tmp, err := os.MkdirTemp("", "hl7broker-compare-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	say := func(format string, a ...any) { fmt.Fprintf(logw, "compare: "+format+"\n", a...) }

	file, sinkAddr, err := compareConfig(o, tmp)
	if err != nil {
		return r, err
	}
	cfg, err := config.Load(file)
	if err != nil {
		return r, err
	}
	r.Durability, r.Replicas, r.Store = cfg.NATS.Durability, cfg.NATS.Replicas, orDefault(cfg.NATS.URL, "embedded")

	say("stage 1 of 3: raw MLLP (an in-process server answering a prebuilt ACK)")
	if r.RawMLLP, err = compareRawMLLP(ctx, o, logw, next); err != nil {
		return r, err
	}
	say("stage 2 of 3: raw JetStream publish (durability %s, %s, replicas %d)", r.Durability, r.Store, r.Replicas)
	raw := *cfg
	raw.DataDir = filepath.Join(tmp, "raw")
	if r.RawJetStream, err = compareRawJetStream(ctx, o, logw, &raw, next); err != nil {
		return r, err
	}
	rounds := max(o.Rounds, 1)
	var withRuns, withoutRuns []brokerRun
	for round := 1; round <= rounds; round++ {
		with := func() error {
			say("stage 3 of 4, round %d of %d: the broker (serve in its own process)", round, rounds)
			run, err := compareBroker(ctx, o, logw, file, cfg, filepath.Join(tmp, fmt.Sprintf("broker-%d", round)), sinkAddr, next, nil)
			withRuns = append(withRuns, run)
			return err
		}
		without := func() error {
			say("stage 4 of 4, round %d of %d: the broker without history (history.enabled false)", round, rounds)
			run, err := compareBroker(ctx, o, logw, file, cfg, filepath.Join(tmp, fmt.Sprintf("broker-nohistory-%d", round)), sinkAddr, next,
				[]string{"HL7BROKER_HISTORY_ENABLED=false"})
			withoutRuns = append(withoutRuns, run)
			return err
		}
		first, second := with, without
		if round%2 == 0 {
			first, second = without, with
		}
		if err := first(); err != nil {
			return r, err
		}
		if err := second(); err != nil {
			return r, err
		}
	}
	for _, run := range append(slices.Clone(withRuns), withoutRuns...) {
		if !run.OK() {
			r.FailedRounds++
		}
	}
	mid := medianRun(withRuns)
	r.Broker, r.BrokerCPUSeconds, r.BrokerPeakRSSMB = mid.Result, mid.cpuSeconds, mid.peakRSSMB
	r.BrokerNoHistory = medianRun(withoutRuns).Result
	r.BrokerRounds, r.NoHistoryRounds = rates(withRuns), rates(withoutRuns)
	r.BrokerCPUMSPerMsg, r.NoHistoryCPUMSPerMsg = medianCPU(withRuns), medianCPU(withoutRuns)
	if r.BrokerNoHistory.PerSecond > 0 {
		r.HistoryCost = 1 - r.Broker.PerSecond/r.BrokerNoHistory.PerSecond
	}
	if r.RawMLLP.PerSecond > 0 {
		r.RatioToRawMLLP = r.Broker.PerSecond / r.RawMLLP.PerSecond
	}
	if r.RawJetStream.PerSecond > 0 {
		r.RatioToRawJetStream = r.Broker.PerSecond / r.RawJetStream.PerSecond
	}
	return r, nil
}

// OK: the broker stages' messages were all acknowledged and delivered,
// and raw JetStream stored every one.
func (r CompareResult) OK() bool {
	return r.Broker.OK() && r.RawJetStream.Errors == 0 && (r.BrokerNoHistory.Messages == 0 || r.BrokerNoHistory.OK()) && r.FailedRounds == 0
}

// brokerRun is one broker stage: what bench saw, and what serve used.
type brokerRun struct {
	Result
	cpuSeconds, peakRSSMB float64
}

func (b brokerRun) cpuMSPerMsg() float64 {
	if b.Messages == 0 {
		return 0
	}
	return b.cpuSeconds * 1000 / float64(b.Messages)
}

// medianRun is the run of median rate (the lower middle of an even count).
func medianRun(runs []brokerRun) brokerRun {
	if len(runs) == 0 {
		return brokerRun{}
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b brokerRun) int { return cmp.Compare(a.PerSecond, b.PerSecond) })
	return sorted[(len(sorted)-1)/2]
}

func medianCPU(runs []brokerRun) float64 {
	if len(runs) == 0 {
		return 0
	}
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = r.cpuMSPerMsg()
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func rates(runs []brokerRun) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.PerSecond
	}
	return out
}

func joinRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, " ")
}

func orDefault(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// compareConfig returns the config file the broker stage runs: the one
// given, or a built-in one written to dir with a sink address for bench.
func compareConfig(o Options, dir string) (file, sinkAddr string, err error) {
	if o.Config != "" {
		return o.Config, "", nil
	}
	if o.Durability != "fsync" && o.Durability != "os" {
		return "", "", fmt.Errorf("--durability %q is not fsync or os", o.Durability)
	}
	in, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	if sinkAddr, err = freeAddr(); err != nil {
		return "", "", err
	}
	nats := map[string]any{"durability": o.Durability}
	if o.NATS != "" {
		nats["url"], nats["replicas"] = o.NATS, o.Replicas
	}
	route := map[string]any{"name": "all", "to": []string{"sink"}}
	if o.RouteScript != "" {
		route["transform"] = []any{map[string]any{"script": o.RouteScript}}
	}
	text, err := yaml.Marshal(map[string]any{
		"data_dir":  filepath.Join(dir, "broker"),
		"nats":      nats,
		"listeners": []any{map[string]any{"name": "bench", "addr": in}},
		"routes":    []any{route},
		"destinations": []any{map[string]any{"name": "sink", "type": "mllp", "addr": sinkAddr, "timeout": "5s",
			"ordering": "key", "partition_by": "PID-3.1", "partitions": 8}},
	})
	if err != nil {
		return "", "", err
	}
	file = filepath.Join(dir, "hl7broker.yaml")
	return file, sinkAddr, os.WriteFile(file, append([]byte("# bench --compare's built-in config\n"), text...), 0o600)
}

// freeAddr is a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func compareRawMLLP(ctx context.Context, o Options, logw io.Writer, next func(int64) message) (Result, error) {
	srv := &mllp.Server{Name: "bench-ceiling", Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		return echoAck(frame)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return load(ctx, o, logw, mllpConns(ln.Addr().String(), nil, o.Timeout), next, nil), nil
}

// echoAck is what the raw-MLLP stage answers: a prebuilt AA with only
// MSA-2 filled in, the frame's MSH-10 found by counting field separators
// (no parse), so that bench's MSA-2 check holds at almost no cost.
func echoAck(frame []byte) []byte {
	const head = "MSH|^~\\&|BENCH|BENCH|||20260101000000||ACK^A08^ACK|1|P|2.5\rMSA|AA|"
	id, line := []byte(nil), frame
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if fields := bytes.SplitN(line, []byte("|"), 11); len(fields) == 11 {
		id = fields[9]
	}
	ack := make([]byte, 0, len(head)+len(id)+1)
	return append(append(append(ack, head...), id...), '\r')
}

func compareRawJetStream(ctx context.Context, o Options, logw io.Writer, c *config.Config, next func(int64) message) (Result, error) {
	bl, err := store.OpenBaseline(ctx, c)
	if err != nil {
		return Result{}, fmt.Errorf("raw JetStream: %w", err)
	}
	defer bl.Close()
	conn := func(int) conn {
		return conn{
			send: func(ctx context.Context, m message) (string, error) {
				ctx, cancel := context.WithTimeout(ctx, o.Timeout)
				defer cancel()
				if err := bl.Publish(ctx, m.controlID, m.data); err != nil {
					return "", err
				}
				return "AA", nil // stored, as the broker's AA says
			},
			close: func() {},
		}
	}
	return load(ctx, o, logw, conn, next, nil), nil
}

// compareBroker runs serve on file as a child process (data_dir and admin
// address replaced), loads its first listener and stops it.
func compareBroker(ctx context.Context, o Options, logw io.Writer, file string, cfg *config.Config, dataDir, sinkAddr string,
	next func(int64) message, env []string) (brokerRun, error) {
	var run brokerRun
	if len(cfg.Listeners) == 0 {
		return run, errors.New("the config has no listener to send to")
	}
	admin, err := freeAddr()
	if err != nil {
		return run, err
	}
	var stderr syncbuf.Buffer
	serve := o.serve(file)
	serve.Env = append(append(os.Environ(), "HL7BROKER_DATA_DIR="+dataDir, "HL7BROKER_ADMIN_ADDR="+admin), env...)
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		return run, fmt.Errorf("start serve: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = serve.Process.Kill()
			<-exited
		}
	}()
	if err := waitReady(ctx, admin, exited); err != nil {
		stopped = true
		return run, fmt.Errorf("serve did not become ready: %w\n%s", err, tail(stderr.String(), 2000))
	}
	var sk *sink
	if sinkAddr != "" {
		if sk, err = startSink(sinkAddr); err != nil {
			return run, fmt.Errorf("sink: %w", err)
		}
		defer sk.close()
	}
	run.Result = load(ctx, o, logw, mllpConns(cfg.Listeners[0].Addr, nil, o.Timeout), next, sk)

	// Stop as SIGINT would, and read what the process used.
	_ = serve.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = serve.Process.Kill()
		<-exited
	}
	stopped = true
	ps := serve.ProcessState
	run.cpuSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	run.peakRSSMB = float64(peakRSSBytes(ps)) / (1 << 20)
	return run, nil
}

// waitReady polls serve's /readyz until it answers 200.
func waitReady(ctx context.Context, admin string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("serve exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("not ready after 60 s")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func PrintCompare(w io.Writer, r CompareResult, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(r)
		return
	}
	fmt.Fprintf(w, "durability %s, store %s, replicas %d, %d connections\n", r.Durability, r.Store, r.Replicas, r.Broker.Connections)
	row := func(name string, b Result) {
		fmt.Fprintf(w, "  %-14s %9.0f msg/s  p50 %6.2fms  p99 %6.2fms  max %7.2fms  (%d messages, %d errors)\n",
			name, b.PerSecond, b.LatencyMS.P50, b.LatencyMS.P99, b.LatencyMS.Max, b.Messages, b.Errors)
	}
	row("raw-mllp", r.RawMLLP)
	row("raw-jetstream", r.RawJetStream)
	row("broker", r.Broker)
	row("no-history", r.BrokerNoHistory)
	fmt.Fprintf(w, "broker / raw-mllp %.2f, broker / raw-jetstream %.2f, history costs %.1f%% of the broker's rate\n", r.RatioToRawMLLP, r.RatioToRawJetStream, 100*r.HistoryCost)
	if len(r.BrokerRounds) > 1 {
		fmt.Fprintf(w, "rounds (medians above): broker %s msg/s; no-history %s msg/s\n", joinRates(r.BrokerRounds), joinRates(r.NoHistoryRounds))
	}
	if r.NoHistoryCPUMSPerMsg > 0 {
		fmt.Fprintf(w, "CPU a message: broker %.3f ms, no-history %.3f ms (history: %.1f%% of the broker's CPU)\n",
			r.BrokerCPUMSPerMsg, r.NoHistoryCPUMSPerMsg, 100*(1-r.NoHistoryCPUMSPerMsg/r.BrokerCPUMSPerMsg))
	}
	perMsg := 0.0
	if r.Broker.Messages > 0 {
		perMsg = r.BrokerCPUSeconds * 1000 / float64(r.Broker.Messages)
	}
	fmt.Fprintf(w, "broker process: CPU %.2f s (%.3f ms a message), peak RSS %.0f MB\n", r.BrokerCPUSeconds, perMsg, r.BrokerPeakRSSMB)
	printSink(w, r.Broker.Sink)
}
