package broker

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Supervision (DESIGN invariant 7): every long-running part (the router,
// each destination's worker, the janitor, each listener) runs under a
// supervisor that restarts it with backoff when it fails to start, stops
// by itself, or panics, and reports its state in /readyz and in
// hl7broker_component_up{component}.

const (
	restartMin = 500 * time.Millisecond
	restartMax = 30 * time.Second
	// healthyAfter: a part restarted after a failure counts as healthy
	// again once it has run this long.
	healthyAfter = 5 * time.Second
)

// partState is one supervised part's state.
type partState struct {
	running   bool
	startedAt time.Time
	failures  int    // in a row; reset once it has run healthyAfter
	lastErr   string // why it last stopped
}

// supervisor runs parts and keeps their states.
type supervisor struct {
	log      zerolog.Logger
	restarts *prometheus.CounterVec // component

	mu    sync.Mutex
	parts map[string]*partState
}

func newSupervisor(log zerolog.Logger, m *metrics) *supervisor {
	s := &supervisor{log: log, restarts: m.restarts, parts: map[string]*partState{}}
	m.reg.MustRegister(componentCollector{s})
	return s
}

// run runs part until ctx ends, restarting it with backoff each time it
// returns or panics before then, and returns when ctx has ended and the
// part has returned. Its state is forgotten then (a removed destination
// is no longer reported).
func (s *supervisor) run(ctx context.Context, name string, part func(context.Context) error) {
	st := &partState{}
	s.mu.Lock()
	s.parts[name] = st
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.parts[name] == st {
			delete(s.parts, name)
		}
		s.mu.Unlock()
	}()
	wait := restartMin
	for {
		s.mu.Lock()
		st.running, st.startedAt = true, time.Now()
		s.mu.Unlock()
		err := runRecovered(ctx, part)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("stopped by itself")
		}
		s.mu.Lock()
		ranFor := time.Since(st.startedAt)
		if ranFor >= healthyAfter {
			st.failures, wait = 0, restartMin
		}
		st.running, st.lastErr = false, err.Error()
		st.failures++
		s.mu.Unlock()
		s.restarts.WithLabelValues(name).Inc()
		s.log.Error().Str("component", name).Str("reason", err.Error()).Dur("restart_in", wait).Msg("stopped; restarting")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, restartMax)
	}
}

// runRecovered runs part, turning a panic into an error; the stack goes
// to the error (function names and addresses only, no message content).
func runRecovered(ctx context.Context, part func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panicked (%T); stack: %s", p, debug.Stack())
		}
	}()
	return part(ctx)
}

// unhealthy lists each part that is not running, or restarted after a
// failure and has not yet run healthyAfter, with why; sorted by name.
func (s *supervisor) unhealthy() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, st := range s.parts {
		switch {
		case !st.running:
			out = append(out, fmt.Sprintf("%s: restarting after %d failure(s): %s", name, st.failures, firstLine(st.lastErr)))
		case st.failures > 0 && time.Since(st.startedAt) < healthyAfter:
			out = append(out, fmt.Sprintf("%s: restarted after %d failure(s), last: %s", name, st.failures, firstLine(st.lastErr)))
		}
	}
	sort.Strings(out)
	return out
}

// stopped says why part name is not running now; "" while it runs (or
// is not supervised).
func (s *supervisor) stopped(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.parts[name]; ok && !st.running {
		return fmt.Sprintf("restarting after %d failure(s): %s", st.failures, firstLine(st.lastErr))
	}
	return ""
}

// firstLine is an error's text without a panic's stack.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "; stack:")
	s, _, _ = strings.Cut(s, "\n")
	return s
}

var componentUpDesc = prometheus.NewDesc("hl7broker_component_up",
	"1 while a supervised part (router, janitor, destination:NAME, listener:NAME) runs healthy, 0 while it is restarting.", []string{"component"}, nil)

// componentCollector reports each supervised part's health at scrape time.
type componentCollector struct{ s *supervisor }

func (c componentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- componentUpDesc }

func (c componentCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for name, st := range c.s.parts {
		up := 0.0
		if st.running && (st.failures == 0 || time.Since(st.startedAt) >= healthyAfter) {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(componentUpDesc, prometheus.GaugeValue, up, name)
	}
}
