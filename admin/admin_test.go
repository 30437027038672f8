package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hl7broker_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Inc()
	ready := Readiness{Ready: false, Checks: map[string]string{"storage": "the disk is full"}}
	s := &Server{Metrics: reg, Ready: func(context.Context) Readiness { return ready }, Log: zerolog.Nop()}
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()

	code, body := testkit.Get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = testkit.Get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "hl7broker_test_total 1")
	code, body = testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var got Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, ready, got)
	ready = Readiness{Ready: true, Checks: map[string]string{"storage": "ok"}}
	code, _ = testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)
}
