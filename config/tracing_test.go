package config_test

import (
	"errors"
	"testing"

	"github.com/hl7broker/hl7broker/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tracingBase = `
listeners: [{name: adt, addr: "127.0.0.1:0"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "127.0.0.1:2575"}]
`

// tracing is off by default, with defaults that work once it is turned
// on; header values may reference secrets.
func TestTracingConfig(t *testing.T) {
	c, err := config.Load(writeConfig(t, tracingBase))
	require.NoError(t, err)
	assert.Equal(t, config.TracingConfig{Enabled: false, Endpoint: "http://127.0.0.1:4318", SampleRatio: 1, ServiceName: "hl7broker"}, c.Tracing)

	t.Setenv("TEST_TRACING_KEY", "k-123")
	c, err = config.Load(writeConfig(t, tracingBase+`
tracing:
  enabled: true
  endpoint: https://collector.example:4318
  sample_ratio: 0.25
  control_ids: true
  headers: {x-api-key: "${env:TEST_TRACING_KEY}"}
`))
	require.NoError(t, err)
	assert.True(t, c.Tracing.Enabled)
	assert.Equal(t, 0.25, c.Tracing.SampleRatio)
	assert.True(t, c.Tracing.ControlIDs)
	assert.Equal(t, map[string]string{"x-api-key": "k-123"}, c.Tracing.Headers, "the secret expanded; the header's case kept")
}

func TestTracingConfigProblems(t *testing.T) {
	_, err := config.Load(writeConfig(t, tracingBase+`
tracing:
  enabled: true
  endpoint: "collector:4318"
  sample_ratio: 2
  ca_file: missing-ca.pem
`))
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	keys := map[string]bool{}
	for _, p := range ce.Problems {
		keys[p.Key] = true
	}
	assert.True(t, keys["tracing.endpoint"], "not an http(s) URL: %v", err)
	assert.True(t, keys["tracing.sample_ratio"], "outside 0 to 1: %v", err)
	assert.True(t, keys["tracing.ca_file"], "missing file: %v", err)
}
