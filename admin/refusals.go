package admin

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// Refused requests (no valid token, a role too low, no CSRF token, a bad
// console sign-in) are throttled per client address: the first
// refusalBudget of a refusalWindow are answered and audited one by one;
// the rest are answered 429 with Retry-After and counted, and one entry
// says how many when the window ends. So a client without a token can
// neither fill the audit trail nor try tokens quickly, and a client with
// a valid token is never slowed.
const (
	refusalBudget     = 10
	refusalWindow     = time.Minute
	maxRefusalClients = 10_000 // past it, the rest share one window
)

type refusals struct {
	mu        sync.Mutex
	byClient  map[string]*refusalCount
	lastSweep time.Time
	now       func() time.Time // the clock; tests set it
}

type refusalCount struct {
	start      time.Time
	count      int // refusals in this window
	suppressed int // of them, answered 429 and not audited one by one
}

// refusalSummary is a window that ended with refusals not audited one by
// one: the entry that stands for them.
type refusalSummary struct {
	client     string
	start      time.Time
	suppressed int
}

func (s refusalSummary) entry() wire.AuditEntry {
	return wire.AuditEntry{At: s.start.Add(refusalWindow).UTC(), Action: "request.refused", IDs: []string{}, Remote: s.client,
		Result: fmt.Sprintf("429 %d more refused requests within %s of %s (throttled, not audited one by one)",
			s.suppressed, refusalWindow, s.start.UTC().Format(time.RFC3339))}
}

// clientOf is the address a request came from, without its port.
func clientOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (t *refusals) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// refuse counts a refusal from client. within: audit it and answer as
// usual; else answer 429, retry after the returned wait. ended are windows
// that closed with refusals left to summarise.
func (t *refusals) refuse(client string) (within bool, wait time.Duration, ended []refusalSummary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	ended = t.sweepLocked(now, false)
	if t.byClient == nil {
		t.byClient = map[string]*refusalCount{}
	}
	c := t.byClient[client]
	if c == nil {
		if len(t.byClient) >= maxRefusalClients {
			client = "(many clients)"
			c = t.byClient[client]
		}
		if c == nil {
			c = &refusalCount{start: now}
			t.byClient[client] = c
		}
	}
	c.count++
	if c.count <= refusalBudget {
		return true, 0, ended
	}
	c.suppressed++
	return false, c.start.Add(refusalWindow).Sub(now), ended
}

// sweep returns the windows that ended (all of them, with force).
func (t *refusals) sweep(force bool) []refusalSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sweepLocked(t.clock(), force)
}

func (t *refusals) sweepLocked(now time.Time, force bool) []refusalSummary {
	if !force && now.Sub(t.lastSweep) < time.Second {
		return nil
	}
	t.lastSweep = now
	var out []refusalSummary
	for client, c := range t.byClient {
		if force || now.Sub(c.start) >= refusalWindow {
			if c.suppressed > 0 {
				out = append(out, refusalSummary{client: client, start: c.start, suppressed: c.suppressed})
			}
			delete(t.byClient, client)
		}
	}
	return out
}

// refused answers a refused request: audited and answered with code and
// why while within the client's budget, else 429 (counted for the
// window's summary entry).
func (a *API) refused(w http.ResponseWriter, r *http.Request, who string, code int, result, detail, why string) {
	within, wait, ended := a.refusals.refuse(clientOf(r))
	for _, s := range ended {
		a.append(r, s.entry())
	}
	if !within {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second))))
		writeError(w, http.StatusTooManyRequests, "too many refused requests from this address; try again later")
		return
	}
	a.record(r, who, "request.refused", result, nil, detail)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hl7broker"`)
	}
	writeError(w, code, why)
}

// FlushRefusals writes the summary entries of throttled refusals still
// counted (at shutdown, so none is lost).
func (a *API) FlushRefusals() {
	for _, s := range a.refusals.sweep(true) {
		a.append(nil, s.entry())
	}
}
