package broker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
