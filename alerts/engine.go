package alerts

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/rs/zerolog"
)

// Statuses of an alert.
const (
	Pending  = "pending" // the condition holds, not yet for the rule's for
	Firing   = "firing"
	Resolved = "resolved"
)

// keepResolved is how long a resolved alert stays listed.
const keepResolved = 24 * time.Hour

// Alert is one rule's state for one target.
type Alert struct {
	Rule     string `json:"rule"`
	Target   string `json:"target"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	// Since is when the alert entered its status: the condition began
	// (pending), the rule fired (firing), or it resolved (resolved).
	Since   time.Time  `json:"since"`
	FiredAt *time.Time `json:"fired_at,omitempty"`
	Detail  string     `json:"detail"`
	// Notified is when notifiers were last told; Owed are those still to
	// be told (a notifier that failed is tried again at each evaluation).
	Notified *time.Time `json:"notified,omitempty"`
	Owed     []string   `json:"owed,omitempty"`
	// Silenced is set while the rule is silenced.
	Silenced *Silence `json:"silenced,omitempty"`
}

// Silence keeps a rule's notifications quiet until a time; it is still
// evaluated and listed.
type Silence struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Store keeps alert state and silences where every broker of a cluster
// sees them, and says which one broker evaluates and notifies.
type Store interface {
	LoadState(ctx context.Context) ([]Alert, error)
	SaveState(ctx context.Context, alerts []Alert) error
	Silences(ctx context.Context) (map[string]Silence, error)
	// Lead takes or renews the lease of the broker named id for ttl;
	// false while another broker holds it.
	Lead(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// ShareFacts saves what broker id sees; ClusterFacts is what the
	// other brokers shared at or after since.
	ShareFacts(ctx context.Context, id string, f Facts) error
	ClusterFacts(ctx context.Context, self string, since time.Time) ([]Shared, error)
}

// Engine evaluates rules on the broker's facts at an interval, keeps each
// alert's state, and tells notifiers. In a cluster only the broker that
// holds the store's lease evaluates and notifies; the others show the
// state it saved. Every broker shares its facts each interval (a sender
// may be connected to any of them, a destination delivered by any), and
// the leader evaluates the cluster's: see merge.
type Engine struct {
	ID       string // this broker, for the lease
	Interval time.Duration
	Facts    func(ctx context.Context) Facts
	Store    Store
	Log      zerolog.Logger
	Link     string // the console's address, for notifications

	mu        sync.Mutex
	rules     []Rule
	notifiers map[string]Notifier
	alerts    map[string]*Alert // rule + "\x00" + target
	seen      counters
	clusterN  map[string]float64 // a cluster's counters, summed from each broker's increases (see merge)
	brokerN   map[string]float64 // each broker's counters as last seen: broker + "\x00" + counter
	leading   bool
	loaded    bool
}

// SetRules puts rules and notifiers in force (at start and on reload);
// the alerts of rules that stay keep their state.
func (e *Engine) SetRules(rules []Rule, notifiers map[string]Notifier) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules, e.notifiers = rules, notifiers
	names := map[string]bool{}
	for _, r := range rules {
		names[r.Name] = true
	}
	for k, a := range e.alerts {
		if !names[a.Rule] {
			delete(e.alerts, k)
		}
	}
}

// Run evaluates every interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.Interval)
	defer t.Stop()
	for {
		e.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step is one evaluation: take or renew the lease, then (as the leader)
// evaluate every rule on fresh facts, tell notifiers what changed, and
// save the state; or (not leading) read the leader's state.
func (e *Engine) Step(ctx context.Context) {
	e.mu.Lock()
	none := len(e.rules) == 0
	e.mu.Unlock()
	if none {
		return
	}
	lead, err := e.Store.Lead(ctx, e.ID, 3*e.Interval)
	if err != nil {
		e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: the lease could not be read; rules are not evaluated this time")
		return
	}
	e.mu.Lock()
	took := lead && !e.leading
	e.leading = lead
	e.mu.Unlock()
	if !lead || took || !e.isLoaded() {
		if err := e.load(ctx); err != nil {
			e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: the saved state could not be read")
			return
		}
	}
	facts := e.Facts(ctx)
	if err := e.Store.ShareFacts(ctx, e.ID, facts); err != nil {
		e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: this broker's facts could not be shared")
	}
	if !lead {
		return
	}
	others, err := e.Store.ClusterFacts(ctx, e.ID, facts.Now.Add(-3*e.Interval))
	if err != nil {
		e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: the other brokers' facts could not be read; rules see this broker's only")
	}
	facts = e.merge(facts, others)
	silences, err := e.Store.Silences(ctx)
	if err != nil {
		e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: silences could not be read; notifications wait")
		return
	}
	due := e.evaluate(facts, silences)
	for _, d := range due {
		e.send(ctx, d)
	}
	if err := e.Store.SaveState(ctx, e.Alerts()); err != nil {
		e.Log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: the state could not be saved")
	}
}

func (e *Engine) isLoaded() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loaded
}

func (e *Engine) load(ctx context.Context) error {
	saved, err := e.Store.LoadState(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alerts = map[string]*Alert{}
	for _, a := range saved {
		e.alerts[a.Rule+"\x00"+a.Target] = &a
	}
	e.loaded = true
	return nil
}

// delivery is one notification owed to one notifier.
type delivery struct {
	key      string // the alert's
	notifier string
	n        Notification
	at       time.Time // the evaluation's
}

// evaluate moves each alert along on facts and returns what is owed.
func (e *Engine) evaluate(f Facts, silences map[string]Silence) []delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.alerts == nil {
		e.alerts = map[string]*Alert{}
	}
	if e.seen == nil {
		e.seen = counters{}
	}
	keep := time.Hour
	for _, r := range e.rules {
		keep = max(keep, r.Window)
	}
	for name, s := range f.Sources {
		e.seen.add("nak:"+name, f.Now, s.Negative, keep)
	}
	for name, d := range f.Destinations {
		e.seen.add("dlq:"+name, f.Now, d.DeadLetters, keep)
	}
	var due []delivery
	for _, r := range e.rules {
		var silence *Silence
		if s, ok := silences[r.Name]; ok && s.Until.After(f.Now) {
			silence = &s
		}
		findings := r.evaluate(f, e.seen)
		watched := map[string]bool{}
		for _, fd := range findings {
			watched[fd.target] = true
			e.step(r, fd, f.Now)
		}
		for key, a := range e.alerts {
			if a.Rule != r.Name {
				continue
			}
			if !watched[a.Target] { // its target is gone (a destination removed)
				e.step(r, finding{target: a.Target, detail: "its target is no longer watched"}, f.Now)
				if e.alerts[key] == nil {
					continue
				}
			}
			if a.Status == Resolved && f.Now.Sub(a.Since) > keepResolved {
				delete(e.alerts, key)
				continue
			}
			if a.Silenced != nil && silence == nil && a.Status == Firing {
				a.Owed = owe(a.Owed, r.Notify, "repeat") // the silence ended: still firing
			}
			a.Silenced = silence
			if silence != nil {
				a.Owed = nil // quiet while silenced
				continue
			}
			for _, o := range a.Owed {
				notifier, status, _ := cut(o)
				due = append(due, delivery{key: key, notifier: notifier, n: e.notification(r, a, status), at: f.Now})
			}
		}
	}
	return due
}

// step moves one alert along on one finding.
func (e *Engine) step(r Rule, fd finding, now time.Time) {
	key := r.Name + "\x00" + fd.target
	a := e.alerts[key]
	if fd.active && (a == nil || a.Status == Resolved) {
		a = &Alert{Rule: r.Name, Target: fd.target, Status: Pending, Since: now}
		e.alerts[key] = a
	}
	if a == nil {
		return
	}
	a.Kind, a.Severity, a.Detail = r.Kind, r.Severity, fd.detail
	switch {
	case fd.active && a.Status == Pending && now.Sub(a.Since) >= fd.hold:
		fired := now
		a.Status, a.Since, a.FiredAt = Firing, fired, &fired
		a.Owed = owe(a.Owed, r.Notify, Firing)
	case fd.active && a.Status == Firing && a.Notified != nil && r.Repeat > 0 && now.Sub(*a.Notified) >= r.Repeat:
		a.Owed = owe(a.Owed, r.Notify, "repeat")
	case !fd.active && a.Status == Pending:
		delete(e.alerts, key)
	case !fd.active && a.Status == Firing:
		a.Status, a.Since = Resolved, now
		a.Owed = owe(a.Owed, r.Notify, Resolved)
	}
}

// owe adds notify's notifiers, each for status, replacing what each was
// still owed (a resolve owed replaces a firing not yet told).
func owe(owed, notify []string, status string) []string {
	out := slices.DeleteFunc(owed, func(o string) bool {
		n, _, _ := cut(o)
		return slices.Contains(notify, n)
	})
	for _, n := range notify {
		out = append(out, n+"\x00"+status)
	}
	return out
}

func cut(o string) (notifier, status string, ok bool) {
	for i := range len(o) {
		if o[i] == 0 {
			return o[:i], o[i+1:], true
		}
	}
	return o, "", false
}

func (e *Engine) notification(r Rule, a *Alert, status string) Notification {
	n := Notification{Rule: r.Name, Kind: r.Kind, Severity: r.Severity, Status: status, Target: a.Target,
		Since: a.Since, Detail: a.Detail, Link: e.Link}
	if status == "repeat" {
		n.Status, n.Repeat = Firing, true
	}
	if a.FiredAt != nil {
		n.FiredAt = *a.FiredAt
	}
	return n
}

// send tells one notifier; the owed entry goes once it was told.
func (e *Engine) send(ctx context.Context, d delivery) {
	e.mu.Lock()
	nt := e.notifiers[d.notifier]
	e.mu.Unlock()
	var err error
	if nt == nil {
		err = errUnknownNotifier
	} else {
		sendCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = nt.Notify(sendCtx, d.n)
		cancel()
	}
	log := e.Log.With().Str("rule", d.n.Rule).Str("target", d.n.Target).Str("notifier", d.notifier).Str("status", d.n.Status).Logger()
	if err != nil {
		log.Warn().Str("reason", secret.Error(err).Error()).Msg("alerts: a notification could not be sent; it is tried again at the next evaluation")
		return
	}
	log.Info().Bool("repeat", d.n.Repeat).Msg("alerts: notified")
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.alerts[d.key]; a != nil {
		a.Owed = slices.DeleteFunc(a.Owed, func(o string) bool { n, _, _ := cut(o); return n == d.notifier })
		at := d.at
		a.Notified = &at
	}
}

// Alerts are every alert known now: firing first, then pending, then
// resolved, each newest first.
func (e *Engine) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.alerts))
	for _, k := range slices.Sorted(maps.Keys(e.alerts)) {
		out = append(out, *e.alerts[k])
	}
	rank := map[string]int{Firing: 0, Pending: 1, Resolved: 2}
	slices.SortStableFunc(out, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(rank[a.Status], rank[b.Status]), b.Since.Compare(a.Since))
	})
	return out
}

// Firing counts each rule's firing alerts (every rule listed, 0 when
// none fires).
func (e *Engine) Firing() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for _, r := range e.rules {
		out[r.Name] += 0
	}
	for _, a := range e.alerts {
		if a.Status == Firing {
			out[a.Rule]++
		}
	}
	return out
}

// Leading says whether this broker evaluates and notifies.
func (e *Engine) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}
