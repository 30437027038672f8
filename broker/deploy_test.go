package broker

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/hl7broker/hl7broker/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files docker-compose.yml runs: the NATS nodes' configs parse with
// the nats-server go.mod pins, and the broker's config is valid for R3.
func TestDeployConfigs(t *testing.T) {
	for i := 1; i <= 3; i++ {
		opts, err := server.ProcessConfigFile(fmt.Sprintf("../deploy/nats/nats-%d.conf", i))
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("nats-%d", i), opts.ServerName)
		assert.True(t, opts.JetStream)
		assert.True(t, opts.SyncAlways, "durability: every write synced on every node")
		assert.Len(t, opts.Routes, 3)
		assert.Equal(t, "hl7broker", opts.Cluster.Name)
	}
	c, err := config.Load("../deploy/hl7broker/hl7broker.yaml")
	require.NoError(t, err)
	assert.Equal(t, 3, c.NATS.Replicas)
	assert.Contains(t, c.NATS.URL, "nats-3:4222")
}

// deploy/prometheus/alerts.yml passes promtool's check, and its unit
// tests (alerts_test.yml: each rule fires when it should, not before)
// pass.
func TestPrometheusRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is missing (Debian's prometheus package; .ci/run installs it)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../deploy/prometheus"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
		assert.Contains(t, string(out), "SUCCESS")
	}
}
