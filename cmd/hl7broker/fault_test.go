package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/loadtest"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// skipUnlessFaultTests skips a fault test under -short and -race: each
// runs serve as a process for tens of seconds (.ci/run's go test ./...
// runs them).
func skipUnlessFaultTests(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: runs serve as a process for 20 to 90 s")
	}
	if raceEnabled {
		t.Skip("fault test: a system test, run without -race (.ci/run's go test ./... runs it)")
	}
}

// metric sums the samples of a counter from serve's /metrics whose labels
// contain every one of labels (0 when it cannot read them).
func metric(admin, name string, labels ...string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var total float64
lines:
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			total += v
		}
	}
	return total
}

// startBench runs bench in-process with --json; the channel yields its
// result when it ends.
func startBench(t *testing.T, args ...string) <-chan loadtest.Result {
	t.Helper()
	done := make(chan loadtest.Result, 1)
	go func() {
		stdout, stderr, _ := runCmd(t, append([]string{"bench", "--json", "--progress", "0"}, args...)...)
		var r loadtest.Result
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Errorf("bench printed no result: %v\n%s\n%s", err, stdout, stderr)
		}
		done <- r
	}()
	return done
}

func waitBench(t *testing.T, done <-chan loadtest.Result, limit time.Duration) loadtest.Result {
	t.Helper()
	select {
	case r := <-done:
		require.NotNil(t, r.Sink, "bench ran without its sink")
		return r
	case <-time.After(limit):
		t.Fatal("bench did not finish")
	}
	return loadtest.Result{}
}

// assertNothingLost logs bench's result and checks its sink: every message
// acked AA delivered, in order per patient.
func assertNothingLost(t *testing.T, r loadtest.Result) {
	t.Helper()
	t.Logf("sent %d, acks %v, errors %d, sink %+v", r.Messages, r.Acks, r.Errors, *r.Sink)
	require.Positive(t, r.Acks["AA"])
	assert.Zero(t, r.Sink.Lost, "every message acked AA was delivered")
	assert.Zero(t, r.Sink.OutOfOrder, "in order per patient")
	assert.EqualValues(t, r.Acks["AA"], r.Sink.Delivered)
}

// writeConfig writes a config file in a temporary directory.
func writeConfig(t *testing.T, config string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(file, []byte(config), 0o644))
	return file
}

// proxy forwards TCP connections from its address to target; down closes
// its listener and every connection through it, up listens again on the
// same address. It stands for a destination that goes away.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{addr: freePort(t), target: target, conns: map[net.Conn]struct{}{}}
	p.up(t)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(t, err)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // went down meanwhile
				p.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			p.conns[in], p.conns[out] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Downstream outage: the destination goes away for 30 s under load, then
// comes back. Messages keep being acknowledged (they are stored), wait in
// the destination's queue, and are all delivered afterwards, in order per
// patient.
func TestDownstreamOutageLosesNothing(t *testing.T) {
	skipUnlessFaultTests(t)
	in, sinkAddr, admin := freePort(t), freePort(t), freePort(t)
	dest := startProxy(t, sinkAddr)
	config := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
nats: {durability: fsync}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", timeout: 2s, ordering: key, partition_by: PID-3.1, partitions: 4, retry: {max_attempts: 10000, backoff: [100ms, 500ms, 1s]}}]
`, t.TempDir(), admin, in, dest.addr)
	file := writeConfig(t, config)
	serve := startServeProcess(t, file)
	defer serve.kill()

	// 4,000 messages at 100 a second: the load runs through the outage.
	done := startBench(t, "--addr", in, "--sink", sinkAddr, "--sink-wait", "120s",
		"--connections", "4", "--messages", "4000", "--rate", "100", "--patients", "50", "--timeout", "5s")
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_delivered_total") >= 200 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `metric(admin, "hl7broker_delivered_total") >= 200`)
	dest.down()
	downAt := metric(admin, "hl7broker_delivered_total")
	aaAtDown := ackedAA(admin)
	<-time.After(30 * time.Second) // the outage itself, not a synchronisation
	assert.Greater(t, ackedAA(admin), aaAtDown+1000, "senders kept getting AA while the destination was down")
	assert.Positive(t, metric(admin, "hl7broker_retried_total"), "deliveries failed and were retried")
	assert.InDelta(t, downAt, metric(admin, "hl7broker_delivered_total"), 8, "nothing delivered while down (but what was in flight)")
	dest.up(t)
	require.Eventually(t, func() bool { return metric(admin, "hl7broker_delivered_total") > downAt+100 }, 60*time.Second, 50*time.Millisecond,
		"deliveries resume by themselves")

	r := waitBench(t, done, 4*time.Minute)
	assertNothingLost(t, r)
	assert.EqualValues(t, 4000, r.Acks["AA"], "every message acknowledged")
}

// natsServerPath builds nats-server from the module version go.mod pins,
// once per test binary run, or skips when it cannot (no go command).
var natsServerPath = sync.OnceValues(func() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is not on PATH: %w", err)
	}
	dir, err := os.MkdirTemp("", "hl7broker-nats-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "nats-server")
	cmd := exec.Command(goTool, "build", "-o", path, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nats-server: %v\n%s", err, out)
	}
	return path, nil
})

// natsProcess is a nats-server child process with JetStream.
type natsProcess struct {
	t      *testing.T
	conf   string
	client string // its client address
	http   string // its monitoring address
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
}

// startNATS writes a nats-server config (client and monitoring on the
// given addresses, JetStream in storeDir, extra appended) and starts it.
func startNATS(t *testing.T, name, client, monitor, storeDir, extra string) *natsProcess {
	t.Helper()
	if _, err := natsServerPath(); err != nil {
		t.Skipf("nats-server: %v", err)
	}
	conf := filepath.Join(t.TempDir(), name+".conf")
	text := fmt.Sprintf("server_name: %s\nlisten: %s\nhttp: %s\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s",
		name, client, monitor, storeDir, extra)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o644))
	p := &natsProcess{t: t, conf: conf, client: client, http: monitor}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *natsProcess) start() {
	path, _ := natsServerPath()
	p.stderr = &syncbuf.Buffer{}
	p.cmd = exec.Command(path, "-c", p.conf)
	p.cmd.Stderr = p.stderr
	require.NoError(p.t, p.cmd.Start())
}

// stop asks the node to shut down (SIGTERM) and waits up to limit.
func (p *natsProcess) stop(limit time.Duration) error { return stopProcess(p.cmd, limit) }

func (p *natsProcess) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// ready reports whether serve's /readyz at admin answers 200.
func ready(admin string) bool {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// healthy reports /healthz of the node: 200 once JetStream is ready.
func (p *natsProcess) healthy() bool {
	resp, err := http.Get("http://" + p.http + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Storage outage: the external NATS server serve stores in is killed under
// load. While it is down no sender gets AA (negative ACKs or no ACK
// instead); when it is back, flow resumes by itself, and every message
// that did get AA is delivered.
func TestStorageOutageIsNeverAA(t *testing.T) {
	skipUnlessFaultTests(t)
	natsAddr, natsHTTP := freePort(t), freePort(t)
	ns := startNATS(t, "store", natsAddr, natsHTTP, t.TempDir(), "")
	require.Eventually(t, ns.healthy, 20*time.Second, 20*time.Millisecond, "nats-server did not start: %s", ns.stderr)

	in, sinkAddr, admin := freePort(t), freePort(t), freePort(t)
	config := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
nats: {url: "nats://%s", durability: fsync, store_timeout: 2s}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", timeout: 2s, ordering: key, partition_by: PID-3.1, partitions: 4, retry: {max_attempts: 10000, backoff: [100ms, 500ms]}}]
`, t.TempDir(), admin, natsAddr, in, sinkAddr)
	file := writeConfig(t, config)
	serve := startServeProcess(t, file)
	defer serve.kill()

	done := startBench(t, "--addr", in, "--sink", sinkAddr, "--sink-wait", "120s",
		"--connections", "4", "--messages", "2500", "--rate", "150", "--patients", "50", "--timeout", "3s")
	require.Eventually(t, func() bool { return ackedAA(admin) >= 300 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `ackedAA(admin) >= 300`)
	ns.kill()
	<-time.After(time.Second) // let what was in flight at the kill finish
	aaDown, negDown := ackedAA(admin), metric(admin, "hl7broker_acks_total", `code="AE"`)
	<-time.After(5 * time.Second) // the outage itself
	assert.Equal(t, aaDown, ackedAA(admin), "an AA while the store was down")
	assert.Greater(t, metric(admin, "hl7broker_acks_total", `code="AE"`), negDown, "senders got AE while the store was down")
	ns.start()
	require.Eventually(t, func() bool { return ackedAA(admin) > aaDown+100 }, 60*time.Second, 50*time.Millisecond,
		"flow resumes by itself when the store is back")

	r := waitBench(t, done, 4*time.Minute)
	assertNothingLost(t, r)
	assert.Positive(t, r.Acks["AE"]+int(r.Errors), "the outage was felt by senders")
}

// startNATSCluster starts three nats-server processes clustered on
// 127.0.0.1, waits until each is ready, and returns them with the URL
// list for nats.url.
func startNATSCluster(t *testing.T) ([]*natsProcess, string) {
	t.Helper()
	var nodes []*natsProcess
	var clients, routes []string
	for range 3 {
		clients = append(clients, freePort(t))
		routes = append(routes, "nats://"+freePort(t))
	}
	for i := range 3 {
		cluster := fmt.Sprintf("cluster {\n  name: hl7broker\n  listen: %s\n  routes: [%s]\n}\n",
			strings.TrimPrefix(routes[i], "nats://"), strings.Join(routes, ", "))
		nodes = append(nodes, startNATS(t, fmt.Sprintf("nats-%d", i+1), clients[i], freePort(t), t.TempDir(), cluster))
	}
	for _, n := range nodes {
		require.Eventually(t, n.healthy, 30*time.Second, 50*time.Millisecond, "node not ready: %s", n.stderr)
	}
	return nodes, "nats://" + strings.Join(clients, ",nats://")
}

// clusterBroker is serve on a NATS cluster with R3 streams: one listener,
// one route to a key-ordered MLLP destination.
type clusterBroker struct {
	in, admin, config string
	serve             *serveProcess
}

func startClusterBroker(t *testing.T, natsURL, sinkAddr string) *clusterBroker {
	t.Helper()
	b := &clusterBroker{in: freePort(t), admin: freePort(t)}
	b.config = writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s"}
nats: {url: "%s", durability: fsync, replicas: 3, store_timeout: 3s}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", timeout: 2s, ordering: key, partition_by: PID-3.1, partitions: 4, retry: {max_attempts: 10000, backoff: [100ms, 500ms]}}]
`, t.TempDir(), b.admin, natsURL, b.in, sinkAddr))
	b.serve = startServeProcess(t, b.config)
	t.Cleanup(func() { b.serve.kill() })
	return b
}

// Cluster: three nats-server processes on 127.0.0.1 with R3 streams and
// two serve instances, loaded through both by bench (its connections fail
// over). One NATS node is killed under load, then one broker: flow goes on
// through the other, and every message acked AA is delivered.
func TestClusterNodeAndBrokerKilled(t *testing.T) {
	skipUnlessFaultTests(t)
	nodes, natsURL := startNATSCluster(t)
	sinkAddr := freePort(t)
	brokers := []*clusterBroker{startClusterBroker(t, natsURL, sinkAddr), startClusterBroker(t, natsURL, sinkAddr)}
	aa := func() float64 { return ackedAA(brokers[0].admin) + ackedAA(brokers[1].admin) }

	done := startBench(t, "--addr", brokers[0].in+","+brokers[1].in, "--sink", sinkAddr, "--sink-wait", "180s",
		"--connections", "4", "--messages", "3000", "--rate", "120", "--patients", "50", "--timeout", "5s")
	require.Eventually(t, func() bool { return aa() >= 300 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `aa() >= 300`)
	nodes[1].kill()
	mark := aa()
	require.Eventually(t, func() bool { return aa() >= mark+300 }, 60*time.Second, 20*time.Millisecond,
		"flow goes on with one NATS node down")
	brokers[1].serve.kill()
	mark = ackedAA(brokers[0].admin)
	require.Eventually(t, func() bool { return ackedAA(brokers[0].admin) >= mark+300 }, 60*time.Second, 20*time.Millisecond,
		"flow goes on through the other broker")

	r := waitBench(t, done, 5*time.Minute)
	logClusterBrokers(t, brokers)
	assertNothingLost(t, r)
}

// logClusterBrokers logs the brokers' output with CLUSTER_DEBUG set (debug
// lines too with SERVE_DEBUG).
func logClusterBrokers(t *testing.T, brokers []*clusterBroker) {
	if os.Getenv("CLUSTER_DEBUG") == "" {
		return
	}
	for i, b := range brokers {
		for _, l := range strings.Split(b.serve.stderr.String(), "\n") {
			if os.Getenv("SERVE_DEBUG") != "" || !strings.Contains(l, `"level":"debug"`) {
				t.Logf("broker %d: %s", i, l)
			}
		}
	}
}

// Rolling restart, as an upgrade is done: under load through both
// brokers, each broker in turn is stopped (SIGTERM) and started again on
// its data, then each NATS node in turn. Flow never stops, each restarted
// part is ready again before the next goes, and every message acked AA is
// delivered, in order per patient.
func TestClusterRollingRestart(t *testing.T) {
	skipUnlessFaultTests(t)
	nodes, natsURL := startNATSCluster(t)
	sinkAddr := freePort(t)
	brokers := []*clusterBroker{startClusterBroker(t, natsURL, sinkAddr), startClusterBroker(t, natsURL, sinkAddr)}
	aa := func() float64 { return ackedAA(brokers[0].admin) + ackedAA(brokers[1].admin) } // a restart sets its broker's back to 0
	flowGoesOn := func(what string) {
		t.Helper()
		mark := aa()
		require.Eventually(t, func() bool { return aa() >= mark+150 }, 60*time.Second, 20*time.Millisecond, "flow goes on %s", what)
	}

	done := startBench(t, "--addr", brokers[0].in+","+brokers[1].in, "--sink", sinkAddr, "--sink-wait", "180s",
		"--connections", "4", "--messages", "6000", "--rate", "150", "--patients", "50", "--timeout", "5s")
	begin := time.Now()
	step := func(format string, a ...any) {
		t.Logf("%5.1fs "+format, append([]any{time.Since(begin).Seconds()}, a...)...)
	}
	require.Eventually(t, func() bool { return aa() >= 300 }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `aa() >= 300`)
	for i, b := range brokers {
		step("stopping broker %d", i)
		require.NoError(t, b.serve.stop(40*time.Second), "broker %d stops by itself on SIGTERM", i)
		step("broker %d stopped", i)
		flowGoesOn(fmt.Sprintf("while broker %d is stopped", i))
		b.serve = startServeProcess(t, b.config)
		require.Eventually(t, func() bool { return ready(b.admin) }, 30*time.Second, 50*time.Millisecond, "broker %d ready again", i)
		step("broker %d ready again", i)
	}
	for i, n := range nodes {
		step("stopping NATS node %d", i)
		require.NoError(t, n.stop(30*time.Second), "NATS node %d stops by itself on SIGTERM", i)
		step("NATS node %d stopped", i)
		flowGoesOn(fmt.Sprintf("while NATS node %d is stopped", i))
		n.start()
		require.Eventually(t, n.healthy, 60*time.Second, 50*time.Millisecond, "NATS node %d healthy again: %s", i, n.stderr)
		step("NATS node %d healthy again", i)
	}
	flowGoesOn("after the last restart")
	step("done restarting")

	r := waitBench(t, done, 5*time.Minute)
	logClusterBrokers(t, brokers)
	assertNothingLost(t, r)
}
