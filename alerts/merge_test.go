package alerts

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The leader evaluates the cluster: the latest message or delivery any
// broker saw, and counters that only grow, through other brokers'
// restarts and departures.
func TestMergeSeesTheWholeCluster(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	e := &Engine{ID: "a"}
	facts := func(now time.Time, lastLab time.Time, naks, dlq float64, success time.Time, paused bool) Facts {
		return Facts{Now: now,
			Sources:      map[string]SourceFacts{"lab": {LastMessage: lastLab, Negative: naks}},
			Destinations: map[string]DestinationFacts{"emr": {LastSuccess: success, DeadLetters: dlq, Paused: paused, QueueDepth: 3}}}
	}
	step := func(own Facts, others ...Shared) Facts {
		t.Helper()
		return e.merge(own, others)
	}
	// a sees no traffic; b gets the lab feed and delivers.
	got := step(facts(t0, time.Time{}, 0, 0, time.Time{}, false),
		Shared{ID: "b", At: t0, Facts: facts(t0, t0.Add(-time.Second), 5, 1, t0.Add(-2*time.Second), false)})
	assert.Equal(t, t0.Add(-time.Second), got.Sources["lab"].LastMessage, "b's last lab message")
	assert.Equal(t, t0.Add(-2*time.Second), got.Destinations["emr"].LastSuccess)
	base := got.Sources["lab"].Negative

	got = step(facts(t0.Add(time.Minute), time.Time{}, 2, 0, time.Time{}, true),
		Shared{ID: "b", At: t0.Add(time.Minute), Facts: facts(t0.Add(time.Minute), t0.Add(50*time.Second), 9, 3, t0, false)})
	assert.Equal(t, base+2+4, got.Sources["lab"].Negative, "a's 2 and b's 4 more")
	assert.True(t, got.Destinations["emr"].Paused, "paused if any broker says so")
	dlq := got.Destinations["emr"].DeadLetters

	// b restarts (a new id, counters from 0) and c's counter is seen
	// first: neither makes the sum fall or jump.
	got = step(facts(t0.Add(2*time.Minute), time.Time{}, 2, 0, time.Time{}, false),
		Shared{ID: "b2", At: t0.Add(2 * time.Minute), Facts: facts(t0.Add(2*time.Minute), t0.Add(110*time.Second), 1, 0, t0, false)})
	assert.Equal(t, base+6, got.Sources["lab"].Negative, "b left and b2 is new: nothing counted, nothing lost")
	assert.Equal(t, dlq, got.Destinations["emr"].DeadLetters)
	got = step(facts(t0.Add(3*time.Minute), time.Time{}, 2, 0, time.Time{}, false),
		Shared{ID: "b2", At: t0.Add(3 * time.Minute), Facts: facts(t0.Add(3*time.Minute), t0.Add(170*time.Second), 4, 2, t0, false)})
	assert.Equal(t, base+9, got.Sources["lab"].Negative, "b2's 3 more")
	assert.Equal(t, dlq+2, got.Destinations["emr"].DeadLetters)
	_, kept := e.brokerN["b\x00nak:lab"]
	assert.False(t, kept, "a broker gone is forgotten")
}
