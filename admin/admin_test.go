package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

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

	code, body := get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "hl7broker_test_total 1")
	code, body = get(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var got Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, ready, got)
	ready = Readiness{Ready: true, Checks: map[string]string{"storage": "ok"}}
	code, _ = get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)
}
