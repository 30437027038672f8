package broker

import (
	"sync"
	"time"
)

// rateBook keeps the values of counters (messages received, delivered)
// and levels (queue depths) over time, sampled every 5 s: the last
// minute's samples tell rates now; one sample a minute over the last hour
// and one every 5 minutes over the last day make the console's charts.
type rateBook struct {
	mu      sync.Mutex
	samples []rateSample // oldest first, at most rateSamples
	hour    []rateSample // oldest first, a minute apart, at most hourSamples
	day     []rateSample // oldest first, 5 minutes apart, at most daySamples
}

type rateSample struct {
	at     time.Time
	values map[string]float64
}

const (
	rateSamples = 13  // a minute of 5 s steps
	hourSamples = 61  // an hour of minutes
	daySamples  = 289 // a day of 5 minutes
)

func (r *rateBook) add(at time.Time, values map[string]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := rateSample{at, values}
	r.samples = keepLast(append(r.samples, s), rateSamples)
	if len(r.hour) == 0 || at.Sub(r.hour[len(r.hour)-1].at) >= time.Minute-time.Second {
		r.hour = keepLast(append(r.hour, s), hourSamples)
	}
	if len(r.day) == 0 || at.Sub(r.day[len(r.day)-1].at) >= 5*time.Minute-time.Second {
		r.day = keepLast(append(r.day, s), daySamples)
	}
}

func keepLast(s []rateSample, n int) []rateSample {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// lastHour is counter key's per-second rate in each minute of the last
// hour that was sampled, oldest first.
func (r *rateBook) lastHour(key string) []float64 { return r.perSecond(key, false) }

// lastDay is counter key's per-second rate in each 5 minutes of the last
// day that was sampled, oldest first.
func (r *rateBook) lastDay(key string) []float64 { return r.perSecond(key, true) }

// window is the last hour's samples (a minute apart) or day's (5 minutes
// apart); r.mu is held.
func (r *rateBook) window(day bool) []rateSample {
	if day {
		return r.day
	}
	return r.hour
}

func (r *rateBook) perSecond(key string, day bool) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	samples := r.window(day)
	out := []float64{}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
			out = append(out, max(0, b.values[key]-a.values[key])/dt)
		}
	}
	return out
}

// levels is level key's value at each sample of the last hour (a minute
// apart) or day (5 minutes apart), oldest first.
func (r *rateBook) levels(key string, day bool) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	samples := r.window(day)
	out := make([]float64, 0, len(samples))
	for _, s := range samples {
		out = append(out, max(0, s.values[key]))
	}
	return out
}

// rate is key's per-second rate from the oldest sample to now's value.
func (r *rateBook) rate(key string, now time.Time, value float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return 0
	}
	s := r.samples[0]
	dt := now.Sub(s.at).Seconds()
	if dt < 1 {
		return 0
	}
	return max(0, value-s.values[key]) / dt
}
