package alerts_test

import (
	"context"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/alerts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each kind fires on its own condition and not before: dead letters
// counted within their window (a restart's counter reset included),
// negative ACKs a minute, disk free as a share, a certificate within its
// days, a router that has left inputs waiting.
func TestRuleKindsFireOnTheirConditions(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	notify := []string{"oncall"}
	w := &world{facts: alerts.Facts{Now: monday, Started: monday,
		Sources:      map[string]alerts.SourceFacts{"adt": {Negative: 0}},
		Destinations: map[string]alerts.DestinationFacts{"emr": {DeadLetters: 7}},
		DiskFree:     50 << 30, DiskTotal: 100 << 30,
		Certificates: []alerts.Certificate{{Kind: "listener", Name: "adt", NotAfter: monday.Add(20 * 24 * time.Hour)}}}}
	e := engine(kv, "a", w, hook.srv.URL,
		alerts.Rule{Name: "dlq", Kind: "dead_letters", Target: "emr", Threshold: 2, Window: 10 * time.Minute, Repeat: time.Hour, Notify: notify},
		alerts.Rule{Name: "naks", Kind: "nak_rate", Target: "adt", Threshold: 5, Window: 2 * time.Minute, Repeat: time.Hour, Notify: notify},
		alerts.Rule{Name: "disk", Kind: "disk_free", Threshold: 10, Percent: true, Repeat: time.Hour, Notify: notify},
		alerts.Rule{Name: "certs", Kind: "certificate", Days: 14, Repeat: time.Hour, Notify: notify},
		alerts.Rule{Name: "routing", Kind: "router", For: time.Minute, Repeat: time.Hour, Notify: notify})
	ctx := context.Background()
	firing := func() map[string]bool {
		out := map[string]bool{}
		for _, a := range e.Alerts() {
			if a.Status == alerts.Firing {
				out[a.Rule] = true
			}
		}
		return out
	}
	e.Step(ctx)
	assert.Empty(t, firing(), "7 dead letters before watching began are not new")

	w.advance(time.Minute)
	w.set(func(f *alerts.Facts) {
		f.Destinations["emr"] = alerts.DestinationFacts{DeadLetters: 8}
		f.Sources["adt"] = alerts.SourceFacts{Negative: 9} // 9 in a minute
		f.DiskFree = 11 << 30
		f.UnroutedAge = 40 * time.Second
	})
	e.Step(ctx)
	assert.Equal(t, map[string]bool{}, firing(), "one dead letter, 4.5 NAKs a minute over 2m, 11% free, 40 s unrouted: nothing yet")

	w.advance(time.Minute)
	w.set(func(f *alerts.Facts) {
		f.Destinations["emr"] = alerts.DestinationFacts{DeadLetters: 1} // a restart: the counter began again, one more
		f.Sources["adt"] = alerts.SourceFacts{Negative: 12}
		f.DiskFree = 9 << 30
		f.UnroutedAge = 100 * time.Second
	})
	e.Step(ctx)
	assert.Equal(t, map[string]bool{"dlq": true, "naks": true, "disk": true, "routing": true}, firing(),
		"two dead letters in 10m, 6 NAKs a minute, 9% free, inputs waiting 100 s")

	w.set(func(f *alerts.Facts) { f.Now = monday.Add(8 * 24 * time.Hour) })
	e.Step(ctx)
	got := firing()
	assert.True(t, got["certs"], "12 days left of 14")
	assert.False(t, got["dlq"], "the dead letters are older than the window")
	var cert alerts.Alert
	for _, a := range e.Alerts() {
		if a.Rule == "certs" {
			cert = a
		}
	}
	require.Equal(t, "listener adt", cert.Target)
	assert.Contains(t, cert.Detail, "expires in 12d")
}
