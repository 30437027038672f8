package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func benchJSON(t *testing.T, args ...string) (benchResult, int, string) {
	t.Helper()
	stdout, stderr, code := runCmd(t, append([]string{"bench", "--json", "--progress", "0"}, args...)...)
	var r benchResult
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
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "msg/s")
	assert.Contains(t, stdout, "ack latency: p50")
	assert.True(t, strings.Contains(stdout, "acks: AA "), stdout)

	_, _, code = runCmd(t, "bench", "--addr", addr)
	assert.NotEqual(t, 0, code, "neither --messages nor --duration")
}
