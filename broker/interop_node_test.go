package broker

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeHL7Server starts the npm package node-hl7-server as a downstream
// MLLP system and returns its address; the test skips where node or the
// package is missing (.ci/run installs it).
func nodeHL7Server(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	if _, err := os.Stat("../testdata/node/node_modules/node-hl7-server"); err != nil {
		t.Skip("node-hl7-server not installed: run npm ci in testdata/node (.ci/run does)")
	}
	cmd := exec.Command(node, "../testdata/node/hl7_server.js")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if port, ok := strings.CutPrefix(s.Text(), "listening "); ok {
				ready <- port
			}
		}
	}()
	select {
	case port := <-ready:
		return "127.0.0.1:" + port
	case <-time.After(20 * time.Second):
		t.Fatal("node-hl7-server did not print its port within 20 s")
		return ""
	}
}

// node-hl7-server 2.5.0 answers every message after a connection's first
// with the first one's control ID. The MLLP destination sees MSA-2 out of
// step, closes the connection and retries on a new one, so every message
// is delivered; before, one stale ACK dead-lettered every later message.
func TestNodeHL7ServerDestination(t *testing.T) {
	addr := nodeHL7Server(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"node"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "node", Type: "mllp", Options: &delivery.MLLPOptions{Addr: addr}, Timeout: 5 * time.Second,
		Retry: config.RetryConfig{MaxAttempts: 3, Backoff: []time.Duration{10 * time.Millisecond}}}}
	p := startPipeline(t, cfg)
	const n = 5
	for i := range n {
		require.Equal(t, hl7.AA, p.send(t, "lab", oruMsg(fmt.Sprintf("NODE-%d", i))))
	}
	testkit.WaitFor(t, 30*time.Second, func() error {
		if d := p.count("node", "delivered"); d != n {
			return fmt.Errorf("%d of %d delivered to node-hl7-server, %d dead-lettered", d, n, p.count("node", "dead_lettered"))
		}
		return nil
	})
	assert.Zero(t, p.count("node", "dead_lettered"))
	assert.Contains(t, p.logs.String(), "MSA-2 is not the MSH-10 sent", "the stale ACKs were seen")
}
