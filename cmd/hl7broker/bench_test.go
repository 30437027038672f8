package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/loadtest"
	"github.com/hl7broker/hl7broker/mllp"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func benchJSON(t *testing.T, args ...string) (loadtest.Result, int, string) {
	t.Helper()
	stdout, stderr, code := runCmd(t, append([]string{"bench", "--json", "--progress", "0"}, args...)...)
	var r loadtest.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &r), "stdout %q stderr %q", stdout, stderr)
	return r, code, stderr
}

func TestBenchAgainstListen(t *testing.T) {
	addr := startListen(t)
	for _, tmpl := range []string{"adt", "oru"} {
		r, code, stderr := benchJSON(t, "--addr", addr, "--connections", "4", "--messages", "200", "--template", tmpl)
		assert.Equal(t, 0, code, stderr)
		assert.EqualValues(t, 200, r.Messages)
		assert.Equal(t, map[string]int{"AA": 200}, r.Acks)
		assert.Zero(t, r.Errors)
		assert.Positive(t, r.PerSecond)
		assert.Positive(t, r.LatencyMS.Max)
		assert.LessOrEqual(t, r.LatencyMS.P50, r.LatencyMS.P99)
	}
}

func TestBenchFilesRateAndNegativeAcks(t *testing.T) {
	addr := startListen(t)
	start := time.Now()
	r, code, _ := benchJSON(t, "--addr", addr, "--messages", "20", "--rate", "100", filepath.Join(testdata, "adt_a01.hl7"), filepath.Join(testdata, "oru_r01.hl7"))
	assert.Equal(t, 0, code)
	assert.EqualValues(t, 20, r.Messages)
	assert.GreaterOrEqual(t, time.Since(start), 190*time.Millisecond, "20 messages at 100/s take at least 0.19 s")

	rejecting := startListen(t, "--ack", "AR")
	r, code, _ = benchJSON(t, "--addr", rejecting, "--messages", "5")
	assert.Equal(t, 1, code, "negative ACKs fail the run")
	assert.Equal(t, 5, r.Acks["AR"])

	stdout, _, code := runCmd(t, "bench", "--addr", addr, "--duration", "300ms", "--connections", "2", "--progress", "100ms")
	assert.Equal(t, 0, code, stdout)
	assert.Contains(t, stdout, "msg/s")
	assert.Contains(t, stdout, "ack latency: p50")
	assert.True(t, strings.Contains(stdout, "acks: AA "), stdout)

	_, _, code = runCmd(t, "bench", "--addr", addr)
	assert.NotEqual(t, 0, code, "neither --messages nor --duration")
}

// bench --sink through a real broker: serve in process, its destination
// pointed at the sink; every acked message is delivered once, in order.
func TestBenchThroughTheBrokerWithSink(t *testing.T) {
	in, sinkAddr := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", ordering: key, partition_by: PID-3.1, partitions: 4, retry: {backoff: [50ms]}}]
`, t.TempDir(), in, sinkAddr)
	startServe(t, cfg)

	r, code, errOut := benchJSON(t, "--addr", in, "--sink", sinkAddr, "--sink-wait", "30s", "--connections", "4", "--messages", "300", "--patients", "20")
	require.Equal(t, 0, code, errOut)
	require.NotNil(t, r.Sink)
	s := *r.Sink
	assert.Equal(t, loadtest.SinkReport{Delivered: 300}, loadtest.SinkReport{Delivered: s.Delivered, Lost: s.Lost, Duplicates: s.Duplicates,
		OutOfOrder: s.OutOfOrder, Unknown: s.Unknown}, "every acked message delivered once, in order per patient")
	assert.Positive(t, s.EndToEndPerSecond, "an end-to-end rate from the first send to the last delivery")
	assert.LessOrEqual(t, s.DuringLoad, s.Delivered, "delivered while sending: some of what was delivered")
}

// bench --compare runs its three stages in one run: serve as a child
// process (this test binary, as TestMain arranges) on the built-in config,
// every delivery checked by the sink.
func TestBenchCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve as a process")
	}
	t.Setenv("HL7BROKER_TEST_MAIN", "1") // children of this process run main
	for _, durability := range []string{"fsync", "os"} {
		stdout, stderr, code := runCmd(t, "bench", "--compare", "--json", "--progress", "0", "--durability", durability,
			"--connections", "4", "--messages", "300", "--patients", "20")
		require.Equal(t, 0, code, "stdout %s\nstderr %s", stdout, stderr)
		var r loadtest.CompareResult
		require.NoError(t, json.Unmarshal([]byte(stdout), &r), stdout)
		assert.Equal(t, durability, r.Durability)
		assert.Equal(t, "embedded", r.Store)
		for name, s := range map[string]loadtest.Result{"raw-mllp": r.RawMLLP, "raw-jetstream": r.RawJetStream, "broker": r.Broker} {
			assert.EqualValues(t, 300, s.Messages, name)
			assert.Equal(t, map[string]int{"AA": 300}, s.Acks, name)
			assert.Positive(t, s.PerSecond, name)
		}
		require.NotNil(t, r.Broker.Sink)
		assert.EqualValues(t, 300, r.Broker.Sink.Delivered)
		assert.Zero(t, r.Broker.Sink.Lost+r.Broker.Sink.OutOfOrder)
		assert.InDelta(t, r.Broker.PerSecond/r.RawMLLP.PerSecond, r.RatioToRawMLLP, 1e-9)
		assert.InDelta(t, r.Broker.PerSecond/r.RawJetStream.PerSecond, r.RatioToRawJetStream, 1e-9)
		assert.Positive(t, r.BrokerCPUSeconds)
		assert.Positive(t, r.BrokerPeakRSSMB, "peak RSS of the serve process")
	}
	_, stderr, code := runCmd(t, "bench", "--compare", "--messages", "10", "--durability", "sometimes")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `--durability "sometimes" is not fsync or os`)
}

// A receiver whose ACKs are out of step (each acknowledges the message
// before) no longer looks healthy: bench counts each as an error and
// exits 1.
func TestBenchCountsStaleAcksAsErrors(t *testing.T) {
	var prev []byte
	var mu sync.Mutex
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		answer := prev
		if answer == nil {
			answer = frame
		}
		prev = append([]byte(nil), frame...)
		m, err := hl7.Parse(answer)
		if err != nil {
			return nil
		}
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Accepted, Mode: hl7.AckModeOriginal})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r, code, _ := benchJSON(t, "--addr", ln.Addr().String(), "--messages", "10")
	assert.Equal(t, 1, code, "stale ACKs fail the run")
	assert.EqualValues(t, 9, r.Errors, "every ACK after the first is for the message before")
	assert.Equal(t, map[string]int{"AA": 1}, r.Acks)
}
