package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An operator's alert story over a real serve process: pausing a
// destination fires its rule (webhook and `alerts`); silencing it needs
// the operator role, a reason, and lands in the audit trail; `alerts`
// shows who silenced it until when; resuming resolves it, and the
// silenced rule tells no one.
func TestAlertsCommandListsAndSilences(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		posted = append(posted, fmt.Sprintf("%v %v", b["rule"], b["status"]))
		mu.Unlock()
	}))
	defer hook.Close()
	down := startDownstream(t)
	dir := t.TempDir()
	alice, victor := writeToken(t, dir, "alice"), writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	cfg := operateConfig(t, dir, adminAddr, adtAddr, down.addr, alice, victor, "{backoff: [20ms]}")
	cfg = writeConfig(t, string(readFile(t, cfg))+fmt.Sprintf(`
alerts:
  interval: 1s
  notifiers:
    - {name: oncall, type: webhook, url: "%s"}
  rules:
    - {name: emr-paused, kind: paused, target: emr, severity: critical, notify: [oncall]}
`, hook.URL))
	p := startServeProcess(t, cfg)
	defer p.kill()
	server := "http://" + adminAddr

	_, code := cli(t, server, alice, nil, "destinations", "pause", "emr")
	require.Equal(t, 0, code)
	var page struct {
		Items []struct{ Rule, Status, Target string } `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, victor, &page, "alerts")
		return code == 0 && len(page.Items) == 1 && page.Items[0].Status == "firing"
	}, 15*time.Second, 50*time.Millisecond, "waiting for emr-paused to fire in `alerts`")
	assert.Equal(t, "emr-paused", page.Items[0].Rule)
	assert.Equal(t, "emr", page.Items[0].Target)
	out, _, code := runCmd(t, "alerts", "--server", server, "--token-file", victor)
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^emr-paused\s+firing\s+emr\s+critical`, out, "the table")

	out, code = cli(t, server, victor, nil, "alerts", "silence", "emr-paused", "--for", "2h", "--reason", "EMR upgrade tonight")
	assert.NotEqual(t, 0, code, "a viewer may not silence")
	assert.Contains(t, out, "403")
	out, code = cli(t, server, alice, nil, "alerts", "silence", "nosuchrule", "--for", "2h", "--reason", "x")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "404")
	_, code = cli(t, server, alice, nil, "alerts", "silence", "emr-paused", "--for", "2h", "--reason", "EMR upgrade tonight")
	require.Equal(t, 0, code)
	out, _, code = runCmd(t, "alerts", "--server", server, "--token-file", victor)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "emr-paused is silenced until ")
	assert.Contains(t, out, "by alice: EMR upgrade tonight")
	var trail struct {
		Items []struct{ User, Action, Result, Detail string } `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &trail, "audit", "--action", "alert.silence")
		return code == 0 && len(trail.Items) == 2
	}, 10*time.Second, 50*time.Millisecond, "waiting for the two silences in the audit trail (indexed a moment after they are stored)")
	assert.Equal(t, "alice", trail.Items[0].User, "newest first: the silence that was made")
	assert.Equal(t, "ok", trail.Items[0].Result)
	assert.Contains(t, trail.Items[0].Detail, "emr-paused for 2h0m0s: EMR upgrade tonight")
	assert.Contains(t, trail.Items[1].Result, "not found", "the one refused is audited too")

	_, code = cli(t, server, alice, nil, "destinations", "resume", "emr")
	require.Equal(t, 0, code)
	require.Eventually(t, func() bool {
		_, code := cli(t, server, victor, &page, "alerts")
		return code == 0 && len(page.Items) == 1 && page.Items[0].Status == "resolved"
	}, 15*time.Second, 50*time.Millisecond, "waiting for emr-paused to resolve")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"emr-paused firing"}, posted, "fired once; silenced when it resolved")
}

// servePausedWithAlerts starts serve with a rule on emr being paused
// (telling a webhook nobody listens on: its failures are logged and
// retried), pauses emr, and returns the admin base URL and alice's token
// (an operator).
func servePausedWithAlerts(t *testing.T) (base, aliceToken string) {
	down := startDownstream(t)
	dir := t.TempDir()
	alice, victor := writeToken(t, dir, "alice"), writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	cfg := operateConfig(t, dir, adminAddr, adtAddr, down.addr, alice, victor, "{backoff: [20ms]}")
	p := startServeProcess(t, writeConfig(t, string(readFile(t, cfg))+`
alerts:
  interval: 1s
  notifiers:
    - {name: oncall, type: webhook, url: "http://127.0.0.1:9/hook"}
  rules:
    - {name: emr-paused, kind: paused, target: emr, severity: critical, notify: [oncall]}
`))
	t.Cleanup(p.kill)
	base = "http://" + adminAddr
	_, code := cli(t, base, alice, nil, "destinations", "pause", "emr")
	require.Equal(t, 0, code)
	return base, strings.TrimSpace(string(readFile(t, alice)))
}

// The Alerts page in a real browser: a paused destination's rule shows
// firing there and on the dashboard (with its charts); an operator
// silences it with a reason from the page, and the page says until when
// and by whom.
func TestBrowserAlertsPage(t *testing.T) {
	ctx := browser(t)
	base, token := servePausedWithAlerts(t)
	do(t, ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin button[type=submit]")))
	waitText(t, ctx, "#who", "alice (operator)")
	waitText(t, ctx, "ul.problems", "Alert emr-paused (emr) firing since")
	waitText(t, ctx, `#destinations tr[data-destination="emr"] td.state`, "paused")

	// The charts: one per listener, two per destination, each with a time
	// axis and a scale; the day's at the press of a button.
	waitText(t, ctx, "#charts", "emr: queue depth")
	axes, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#charts svg.chart")].map(c =>
		c.querySelectorAll(".x-tick").length + "x" + c.querySelectorAll(".y-tick").length + ":" + [...c.querySelectorAll(".x-tick")].map(e => e.textContent).join(",")).join(" ")`))
	require.NoError(t, err)
	assert.Equal(t, "3x3:-60m,-30m,now 3x3:-60m,-30m,now 3x3:-60m,-30m,now", axes, "adt's rate, emr's rate and queue, each with 3 time and 3 value ticks")
	do(t, ctx, chromedp.Click(chromedp.CSS(`.chart-span button[data-span="day"]`)))
	waitText(t, ctx, "#charts", "-24h")

	openUntil(t, ctx, base+"/ui/#/alerts", "#firing", "emr-paused")
	waitText(t, ctx, `#firing tr[data-rule="emr-paused"] td.status`, "firing")
	screenshot(t, ctx, "alerts")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(`#rules tr[data-rule="emr-paused"] input[name=reason]`), "EMR upgrade tonight"),
		chromedp.Click(chromedp.CSS(`#rules tr[data-rule="emr-paused"] button[type=submit]`)))
	waitText(t, ctx, `#rules tr[data-rule="emr-paused"] td.silenced`, "by alice: EMR upgrade tonight")
	waitText(t, ctx, `#firing tr[data-rule="emr-paused"] td.status`, "(silenced)")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#rules tr[data-rule="emr-paused"] button.unsilence`)))
	var silenced string
	require.Eventually(t, func() bool {
		silenced, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#rules tr[data-rule="emr-paused"] td.silenced') || {textContent: "?"}).textContent`))
		return silenced == ""
	}, 20*time.Second, 100*time.Millisecond, "waiting for the silence to be lifted on the page; it shows %q", silenced)
}

// The dashboard's charts and the Alerts page in Firefox: each chart has
// its axes, the firing rule shows, and silencing it from the page with a
// reason works.
func TestBrowserAlertsPageFirefox(t *testing.T) {
	b, tab := firefox(t)
	base, token := servePausedWithAlerts(t)
	b.signIn(t, tab, base, token, "alice (operator)")
	b.until(t, tab, "", `[...document.querySelectorAll("#charts svg.chart")].map(c => [...c.querySelectorAll(".x-tick")].map(e => e.textContent).join(",") + "/" + c.querySelectorAll(".y-tick").length).join(" ")`,
		"-60m,-30m,now/3 -60m,-30m,now/3 -60m,-30m,now/3")
	b.until(t, tab, base+"/ui/#/alerts", `(document.getElementById("firing") || {}).textContent`, "emr-paused")
	_, err := b.eval(tab, `(document.querySelector('#rules tr[data-rule="emr-paused"] input[name=reason]').value = "EMR upgrade tonight",
		document.querySelector('#rules tr[data-rule="emr-paused"] button[type=submit]').click(), "")`)
	require.NoError(t, err)
	b.until(t, tab, "", `(document.querySelector('#rules tr[data-rule="emr-paused"] td.silenced') || {}).textContent`, "by alice: EMR upgrade tonight")
}
