package broker

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminMetricsHealthAndReadiness(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Admin.Addr = "127.0.0.1:0"
	cfg.Routes = []config.RouteConfig{{Name: "a01", When: config.WhenConfig{Event: []string{"A01"}}, To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)
	base := "http://" + p.AdminAddr().String()

	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("M-1", "M1", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("M-2", "M1", "A40")), "stored, unrouted")
	assert.Equal(t, hl7.AR, p.send(t, "adt", strings.Replace(adtMsg("M-3", "M1", "A01"), "ADT^A01", "ORU^R01", 1)))
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(emr.got()) == 1`)

	require.Eventually(t, func() bool {
		_, body := testkit.Get(t, base+"/metrics")
		return strings.Contains(body, `hl7broker_delivered_total{destination="emr"} 1`) && strings.Contains(body, "hl7broker_unrouted_total 1")
	}, 10*time.Second, 10*time.Millisecond, "/metrics counts one delivered and one unrouted")
	code, body := testkit.Get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	for _, series := range []string{
		`hl7broker_received_total{listener="adt"} 3`,
		`hl7broker_acks_total{code="AA",listener="adt"} 2`,
		`hl7broker_acks_total{code="AR",listener="adt"} 1`,
		`hl7broker_store_seconds_count{listener="adt"} 2`,
		`hl7broker_routed_total{destination="emr"} 1`,
		`hl7broker_delivery_seconds_count{destination="emr"} 1`,
		`hl7broker_queue_depth{destination="emr"} 0`,
		`hl7broker_connections_open{listener="adt"}`,
		`hl7broker_build_info{commit="`,
	} {
		assert.Contains(t, body, series)
	}
	if p.NATS().Syncer != nil {
		flushes := regexp.MustCompile(`(?m)^hl7broker_store_flushes_total (\d+)`).FindStringSubmatch(body)
		require.Len(t, flushes, 2, "flushes are counted")
		n, _ := strconv.Atoi(flushes[1])
		assert.GreaterOrEqual(t, n, 2, "each stored message waited for a flush")
		assert.Contains(t, body, "hl7broker_store_flush_seconds_total ")
	}
	for _, phi := range []string{"Müller", "José", "M-1"} {
		assert.NotContains(t, body, phi, "no message content or IDs in metric labels")
	}

	code, body = testkit.Get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code, body)
	var r admin.Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	assert.True(t, r.Ready)

	p.NATS().Server().Shutdown() // storage gone
	require.Eventually(t, func() bool { c, _ := testkit.Get(t, base+"/readyz"); return c == http.StatusServiceUnavailable }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `c == http.StatusServiceUnavailable`)
	_, body = testkit.Get(t, base+"/readyz")
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	assert.False(t, r.Ready)
	assert.NotEqual(t, "ok", r.Checks["nats"])
}
