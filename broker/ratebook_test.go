package broker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The console's chart: one rate a minute over the last hour, from
// samples taken every 5 s.
func TestRateBookLastHour(t *testing.T) {
	var r rateBook
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := 0; i <= 90*12; i++ { // 90 minutes of 5 s samples, 2 messages a second
		r.add(t0.Add(time.Duration(i)*5*time.Second), map[string]float64{"l:adt": float64(i * 10)})
	}
	h := r.lastHour("l:adt")
	assert.Len(t, h, hourSamples-1, "an hour of minutes")
	for _, v := range h {
		assert.InDelta(t, 2.0, v, 1e-9)
	}
	for _, v := range r.lastHour("l:none") {
		assert.Zero(t, v, "a counter never seen has rate 0")
	}
	assert.InDelta(t, 2.0, r.rate("l:adt", t0.Add(90*time.Minute), 90*12*10), 1e-9)
}

// The day's chart: one rate every 5 minutes over the last day, and a
// queue's depth as it was at each sample (a level, not a rate).
func TestRateBookLastDayAndLevels(t *testing.T) {
	var r rateBook
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= 30*60*12; i++ { // 30 hours of 5 s samples, 1 message a second, a queue growing by one a minute
		r.add(t0.Add(time.Duration(i)*5*time.Second), map[string]float64{"d:emr": float64(i * 5), "q:emr": float64(i / 12)})
	}
	day := r.lastDay("d:emr")
	assert.Len(t, day, daySamples-1, "a day of 5 minutes")
	for _, v := range day {
		assert.InDelta(t, 1.0, v, 1e-9)
	}
	q := r.levels("q:emr", true)
	require.Len(t, q, daySamples)
	assert.InDelta(t, 5.0, q[len(q)-1]-q[len(q)-2], 1e-9, "5 minutes apart")
	assert.Equal(t, float64(30*60), q[len(q)-1], "the depth at the last sample")
	hour := r.levels("q:emr", false)
	require.Len(t, hour, hourSamples)
	assert.InDelta(t, 1.0, hour[len(hour)-1]-hour[len(hour)-2], 1e-9, "a minute apart")
}
