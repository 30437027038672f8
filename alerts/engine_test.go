package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/alerts"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// receiver is a webhook endpoint on 127.0.0.1 that keeps what it was sent.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
	raw    []string
	fail   bool // answer 503
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		r.bodies, r.raw = append(r.bodies, m), append(r.raw, string(b))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// world is what the test says the broker looks like, at a clock it moves.
type world struct {
	mu    sync.Mutex
	facts alerts.Facts
}

func (w *world) set(change func(f *alerts.Facts)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	change(&w.facts)
}

func (w *world) get(context.Context) alerts.Facts {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.facts
	return f
}

func (w *world) advance(d time.Duration) { w.set(func(f *alerts.Facts) { f.Now = f.Now.Add(d) }) }

func openKV(t *testing.T) alerts.KV {
	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return alerts.KV{JetStream: n.JetStream}
}

func engine(kv alerts.KV, id string, w *world, hook string, rules ...alerts.Rule) *alerts.Engine {
	e := &alerts.Engine{ID: id, Interval: time.Second, Facts: w.get, Store: kv, Log: zerolog.Nop(), Link: "https://broker.example.org/ui/"}
	nt, _ := alerts.NewNotifier(config.NotifierConfig{Name: "oncall", Type: "webhook", URL: hook, Format: "json"}, "")
	e.SetRules(rules, map[string]alerts.Notifier{"oncall": nt})
	return e
}

var monday = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // a Monday

// A destination failing fires once the rule's for has passed (not
// before), is told again at the repeat interval while it stays firing,
// and resolves on the first delivery; each notification holds the rule,
// status, target, since and the console link, and nothing else of note.
func TestFailingDestinationFiresRepeatsAndResolves(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, Destinations: map[string]alerts.DestinationFacts{
		"emr": {LastSuccess: monday, QueueDepth: 0}}}}
	e := engine(kv, "a", w, hook.srv.URL, alerts.Rule{Name: "emr-down", Kind: "failing", Target: "emr", Severity: "critical",
		For: 10 * time.Minute, Repeat: time.Hour, Notify: []string{"oncall"}})
	ctx := context.Background()
	e.Step(ctx)
	assert.Empty(t, e.Alerts(), "a destination that delivers is not failing")

	w.advance(time.Minute)
	w.set(func(f *alerts.Facts) {
		f.Destinations["emr"] = alerts.DestinationFacts{LastSuccess: monday, LastFailure: f.Now, QueueDepth: 12}
	})
	e.Step(ctx)
	require.Len(t, e.Alerts(), 1)
	assert.Equal(t, alerts.Pending, e.Alerts()[0].Status)
	w.advance(9*time.Minute + 59*time.Second)
	e.Step(ctx)
	assert.Equal(t, alerts.Pending, e.Alerts()[0].Status, "not yet for 10m")
	assert.Empty(t, hook.got())

	w.advance(time.Second)
	e.Step(ctx)
	a := e.Alerts()[0]
	assert.Equal(t, alerts.Firing, a.Status)
	require.Len(t, hook.got(), 1)
	body := hook.got()[0]
	assert.Equal(t, "emr-down", body["rule"])
	assert.Equal(t, "firing", body["status"])
	assert.Equal(t, "emr", body["target"])
	assert.Equal(t, w.get(ctx).Now.Format(time.RFC3339), body["since"])
	assert.Equal(t, "https://broker.example.org/ui/", body["link"])
	assert.Contains(t, body["detail"], "12 waiting")

	w.advance(30 * time.Minute)
	e.Step(ctx)
	assert.Len(t, hook.got(), 1, "no repeat before an hour")
	w.advance(30 * time.Minute)
	e.Step(ctx)
	require.Len(t, hook.got(), 2, "repeated after an hour")
	assert.Equal(t, true, hook.got()[1]["repeat"])

	w.set(func(f *alerts.Facts) {
		f.Destinations["emr"] = alerts.DestinationFacts{LastSuccess: f.Now, LastFailure: f.Now.Add(-time.Second)}
	})
	e.Step(ctx)
	require.Len(t, hook.got(), 3)
	assert.Equal(t, "resolved", hook.got()[2]["status"])
	assert.Equal(t, alerts.Resolved, e.Alerts()[0].Status)
}

// A listener silent for the rule's duration fires; a message resolves
// it; outside the schedule's hours it stays quiet, and at the start of
// the next stretch the silence is counted from there, not from the
// evening before.
func TestSilentListenerFiresWithinItsScheduleOnly(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	zone, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	sched := &config.Schedule{From: 7 * 60, To: 19 * 60, Zone: zone}
	for d := time.Monday; d <= time.Friday; d++ {
		sched.Days[d] = true
	}
	start := time.Date(2026, 12, 7, 8, 0, 0, 0, zone) // Monday 08:00 in Berlin
	w := &world{facts: alerts.Facts{Now: start, Started: start.Add(-time.Hour), Sources: map[string]alerts.SourceFacts{
		"lab": {LastMessage: start}}}}
	e := engine(kv, "a", w, hook.srv.URL, alerts.Rule{Name: "lab-silent", Kind: "silent", Target: "lab", Severity: "warning",
		For: 30 * time.Minute, Schedule: sched, Notify: []string{"oncall"}})
	ctx := context.Background()
	e.Step(ctx)
	w.advance(29 * time.Minute)
	e.Step(ctx)
	assert.Empty(t, hook.got())
	w.advance(time.Minute)
	e.Step(ctx)
	require.Len(t, hook.got(), 1, "30 minutes without a message")
	assert.Equal(t, "firing", hook.got()[0]["status"])
	assert.Equal(t, "lab", hook.got()[0]["target"])

	w.set(func(f *alerts.Facts) { f.Sources["lab"] = alerts.SourceFacts{LastMessage: f.Now} })
	w.advance(time.Second)
	e.Step(ctx)
	require.Len(t, hook.got(), 2)
	assert.Equal(t, "resolved", hook.got()[1]["status"])

	// Friday evening: the last message at 18:00, then nothing all weekend.
	friday := time.Date(2026, 12, 11, 18, 0, 0, 0, zone)
	w.set(func(f *alerts.Facts) { f.Now, f.Sources["lab"] = friday, alerts.SourceFacts{LastMessage: friday} })
	e.Step(ctx)
	w.advance(time.Hour + 5*time.Minute) // 19:05: the schedule is over
	e.Step(ctx)
	assert.Len(t, hook.got(), 2, "quiet outside the schedule (19:00 on)")
	for _, at := range []time.Time{time.Date(2026, 12, 12, 12, 0, 0, 0, zone), time.Date(2026, 12, 13, 23, 0, 0, 0, zone),
		time.Date(2026, 12, 14, 7, 20, 0, 0, zone)} { // Saturday noon, Sunday night, Monday 07:20
		w.set(func(f *alerts.Facts) { f.Now = at })
		e.Step(ctx)
		assert.Len(t, hook.got(), 2, "at %s", at)
	}
	w.set(func(f *alerts.Facts) { f.Now = time.Date(2026, 12, 14, 7, 30, 0, 0, zone) })
	e.Step(ctx)
	require.Len(t, hook.got(), 3, "Monday 07:30: 30 minutes into the schedule without a message")
}

// A silenced rule is still evaluated and listed, but tells no one; when
// the silence ends and it still fires, it is told again.
func TestSilencedRuleTellsNoOneUntilTheSilenceEnds(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, Destinations: map[string]alerts.DestinationFacts{"emr": {QueueDepth: 5}}}}
	e := engine(kv, "a", w, hook.srv.URL, alerts.Rule{Name: "emr-queue", Kind: "queue", Target: "emr", Severity: "warning",
		Threshold: 100, Repeat: 4 * time.Hour, Notify: []string{"oncall"}})
	ctx := context.Background()
	require.NoError(t, kv.SetSilence(ctx, "emr-queue", &alerts.Silence{Until: monday.Add(time.Hour), Reason: "EMR upgrade", By: "ops"}))
	w.set(func(f *alerts.Facts) { f.Destinations["emr"] = alerts.DestinationFacts{QueueDepth: 500} })
	e.Step(ctx)
	require.Len(t, e.Alerts(), 1)
	a := e.Alerts()[0]
	assert.Equal(t, alerts.Firing, a.Status)
	require.NotNil(t, a.Silenced)
	assert.Equal(t, "EMR upgrade", a.Silenced.Reason)
	w.advance(59 * time.Minute)
	e.Step(ctx)
	assert.Empty(t, hook.got(), "silenced")
	w.advance(2 * time.Minute)
	e.Step(ctx)
	require.Len(t, hook.got(), 1, "the silence ended while it still fires")
	assert.Equal(t, "emr-queue", hook.got()[0]["rule"])
}

// A notifier that fails is tried again at the next evaluation, and the
// alert's state (firing, what is still owed) survives a restart: a new
// engine on the same store neither forgets the alert nor tells it twice.
func TestStateAndUnsentNotificationsSurviveARestart(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, StorageProblem: "the disk is full"}}
	rule := alerts.Rule{Name: "store", Kind: "storage", Severity: "critical", Repeat: 4 * time.Hour, Notify: []string{"oncall"}}
	hook.fail = true
	first := engine(kv, "a", w, hook.srv.URL, rule)
	ctx := context.Background()
	first.Step(ctx)
	assert.Equal(t, alerts.Firing, first.Alerts()[0].Status)
	assert.Empty(t, hook.got(), "the receiver refused")

	hook.mu.Lock()
	hook.fail = false
	hook.mu.Unlock()
	restarted := engine(kv, "a", w, hook.srv.URL, rule) // the same broker, after a restart
	w.advance(time.Second)
	restarted.Step(ctx)
	require.Len(t, hook.got(), 1, "told once the receiver took it, by the restarted engine")
	assert.Equal(t, "firing", hook.got()[0]["status"])
	w.advance(time.Second)
	restarted.Step(ctx)
	again := engine(kv, "a", w, hook.srv.URL, rule)
	again.Step(ctx)
	assert.Len(t, hook.got(), 1, "no second firing after another restart")
	assert.Equal(t, alerts.Firing, again.Alerts()[0].Status)
}

// Two brokers on one store: only the lease holder evaluates and
// notifies; the other shows the same state. When the holder stops
// renewing, the other takes over after the lease runs out, without
// telling again what was told.
func TestOnlyTheLeaseHolderNotifies(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, StorageProblem: "the disk is full"}}
	rule := alerts.Rule{Name: "store", Kind: "storage", Severity: "critical", Repeat: 4 * time.Hour, Notify: []string{"oncall"}}
	a, b := engine(kv, "a", w, hook.srv.URL, rule), engine(kv, "b", w, hook.srv.URL, rule)
	ctx := context.Background()
	for range 3 {
		a.Step(ctx)
		b.Step(ctx)
	}
	assert.Len(t, hook.got(), 1, "one notification from two brokers")
	assert.True(t, a.Leading())
	assert.False(t, b.Leading())
	require.Len(t, b.Alerts(), 1, "the other broker shows the leader's state")
	assert.Equal(t, alerts.Firing, b.Alerts()[0].Status)

	// a stops; its lease (3 intervals) runs out.
	testkit.WaitFor(t, 10*time.Second, func() error {
		b.Step(ctx)
		if !b.Leading() {
			return errNotYet
		}
		return nil
	})
	w.set(func(f *alerts.Facts) { f.StorageProblem = "" })
	b.Step(ctx)
	require.Len(t, hook.got(), 2)
	assert.Equal(t, "resolved", hook.got()[1]["status"], "the new holder resolves what the old one fired, once")
}

var errNotYet = &notYet{}

type notYet struct{}

func (*notYet) Error() string { return "the second broker does not hold the lease yet" }

// No notification carries a value from a message: every field is built
// from names, counts and durations. A rule over every destination makes
// one alert per destination.
func TestNotificationsHoldNamesCountsAndDurationsOnly(t *testing.T) {
	kv, hook := openKV(t), newReceiver(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, Destinations: map[string]alerts.DestinationFacts{
		"emr": {OldestAge: 20 * time.Minute, QueueDepth: 3}, "lab": {OldestAge: 30 * time.Minute, QueueDepth: 7}, "fhir": {}}}}
	e := engine(kv, "a", w, hook.srv.URL, alerts.Rule{Name: "late", Kind: "oldest", Severity: "warning",
		Threshold: (15 * time.Minute).Seconds(), Repeat: time.Hour, Notify: []string{"oncall"}})
	e.Step(context.Background())
	require.Len(t, hook.got(), 2)
	var targets []string
	for i, b := range hook.got() {
		targets = append(targets, b["target"].(string))
		for k := range b {
			assert.Contains(t, []string{"rule", "kind", "severity", "status", "repeat", "target", "since", "fired_at", "detail", "link", "summary", "source"}, k)
		}
		assert.NotContains(t, hook.raw[i], "PID")
	}
	assert.ElementsMatch(t, []string{"emr", "lab"}, targets)
	assert.True(t, strings.HasPrefix(hook.got()[0]["detail"].(string), "the oldest waiting message is "))
}
