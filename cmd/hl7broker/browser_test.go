package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testkit"
)

// hostileADT is an ADT whose fields hold markup: the console must show
// it as text.
const hostileADT = "MSH|^~\\&|EVIL|HOSP|EMR|HOSP|20261201080000||ADT^A01|HOSTILE-1|P|2.5\r" +
	"PID|1||666^^^HOSP^MR||<script>window.pwned=1</script>^\"><img src=x onerror=window.pwned=2>||19700101|M\r"

// browser starts Debian's Chromium (headless) under chromedp, or skips.
// Every confirm() is answered OK, as a person confirming would.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium on this machine: .ci/run installs Debian's chromium for the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(cancelT)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		switch ev.(type) {
		case *page.EventJavascriptDialogOpening, page.EventJavascriptDialogOpening:
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}), "start chromium")
	return ctx
}

// js quotes s for a JavaScript expression.
func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// waitText waits until the element sel's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, js(sel))))
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling the page; the failure below says what was awaited
	}
	t.Fatalf("waited 20 s for %q in %s; it shows %q", want, sel, got)
}

// openUntil opens url until the element sel's text contains want: a
// page that shows the index shows a message once it is indexed (about
// half a second after it was stored).
func openUntil(t *testing.T, ctx context.Context, url, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url))
		for range 10 {
			got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, js(sel))))
			if strings.Contains(got, want) {
				return
			}
			time.Sleep(100 * time.Millisecond) // polling the page; the failure below says what was awaited
		}
	}
	t.Fatalf("waited 20 s for %q in %s of %s; it shows %q", want, sel, url, got)
}

// do runs browser steps.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// screenshot saves the page as console-NAME.png in the folder
// HL7BROKER_SCREENSHOTS names (docs/, for docs/console.md), if set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("HL7BROKER_SCREENSHOTS")
	if dir == "" {
		return
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 900))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644))
}

// The console in a real browser against a real serve: sign in, see the
// listener's counter move after send, find the message by MRN, open it
// and see its journey, replay a dead letter, pause and resume a
// destination, a hostile message shown as text, a viewer sees no content,
// and a change without the CSRF token refused.
func TestBrowserConsole(t *testing.T) {
	ctx := browser(t)
	down := startDownstream(t)
	dir := t.TempDir()
	alice, victor := writeToken(t, dir, "alice"), writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	cfg := operateConfig(t, dir, adminAddr, adtAddr, down.addr, alice, victor, "{max_attempts: 1}")
	p := startServeProcess(t, cfg)
	defer p.kill()
	base := "http://" + adminAddr
	token := func(file string) string { b, _ := os.ReadFile(file); return strings.TrimSpace(string(b)) }
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	signIn := func(tokenFile, who string) {
		do(t, ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css("#token")),
			chromedp.SendKeys(css("#token"), token(tokenFile)), chromedp.Click(css("#signin button[type=submit]")))
		waitText(t, ctx, "#who", who)
	}
	received := `#listeners tr[data-listener="adt"] td.received`
	signIn(alice, "alice (operator)")
	waitText(t, ctx, received, "0")

	// A listener's counter moves after send (the dashboard refreshes itself).
	_, _, code := runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "adt_a04_lf.hl7"))
	require.Equal(t, 0, code)
	waitText(t, ctx, received, "1")
	screenshot(t, ctx, "dashboard")

	// Find it by the start of a name in another case, with its key
	// columns (the name as the message has it) and its last error; then by
	// MRN, open it, see its journey: the destination said AR.
	openUntil(t, ctx, base+"/ui/#/messages?key=family&key_value=o%27BR*", "#results", "A04-778812")
	waitText(t, ctx, "#results td.key", "O'Brien")
	waitText(t, ctx, "#results", "445566")
	openUntil(t, ctx, base+"/ui/#/messages?key=mrn&key_value=445566", "#results", "A04-778812")

	// Words of the message, any field (history.content_search).
	openUntil(t, ctx, base+"/ui/#/messages?text=o%27brien", "#results", "A04-778812")
	do(t, ctx, chromedp.Navigate(base+"/ui/#/messages?text=o%27brien+nosuchword"))
	waitText(t, ctx, "main", "No message matches.")

	// Saved searches: save the search by MRN, open it again from the
	// list on another visit, delete it.
	openUntil(t, ctx, base+"/ui/#/messages?key=mrn&key_value=445566", "#results", "A04-778812")
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.prompt = () => "MRN 445566"; true`))
	require.NoError(t, err)
	do(t, ctx, chromedp.Click(css("#save-search")))
	waitText(t, ctx, "#saved-searches", "MRN 445566")
	do(t, ctx, chromedp.Navigate(base+"/ui/#/messages?type=ZZZ"))
	waitText(t, ctx, "main", "No message matches.")
	do(t, ctx, chromedp.Click(css(`#saved-searches .saved-search[data-name="MRN 445566"] a`)))
	waitText(t, ctx, "#results", "A04-778812")
	do(t, ctx, chromedp.Click(css(`#saved-searches .saved-search[data-name="MRN 445566"] button.remove`)))
	testkit.WaitFor(t, 20*time.Second, func() error {
		if gone, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("saved-searches")`)); !gone {
			return errors.New("the deleted saved search is still listed")
		}
		return nil
	})
	openUntil(t, ctx, base+"/ui/#/messages?destination=emr&status=dead_lettered", "#results", "dead_lettered (emr)")
	do(t, ctx, chromedp.Click(css("#results a")))
	waitText(t, ctx, "#journey", "dead-lettered for emr")
	waitText(t, ctx, "#fields", "Patient Name")
	waitText(t, ctx, `.copy[data-destination="emr"] pre.response`, "MSA|AR|A04-778812") // what the EMR answered, whole
	do(t, ctx, chromedp.Click(css(`#fields tr[data-path="PID-5"] summary`)))
	waitText(t, ctx, `#fields tr[data-path="PID-5.2"]`, "Given Name")
	screenshot(t, ctx, "message")

	// The audit by patient: who viewed this MRN's messages, and an export.
	openUntil(t, ctx, base+"/ui/#/audit?key=mrn&key_value=445566", "#audit", "message.view")
	waitText(t, ctx, "#audit td.keys", "445566")
	screenshot(t, ctx, "audit")
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("audit-csv").getAttribute("href")`))
	require.NoError(t, err)
	assert.Contains(t, href, "key.mrn=445566")
	assert.Contains(t, href, "format=csv")

	// Replay the dead letter once the destination accepts.
	down.accept.Store(true)
	openUntil(t, ctx, base+"/ui/#/dlq", "#dlq", "A04-778812")
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").textContent`))
	require.NoError(t, err)
	assert.NotContains(t, text, "null", "nothing absent is shown as null")
	screenshot(t, ctx, "dlq")
	do(t, ctx, chromedp.Click(css("#dlq input[type=checkbox]")), chromedp.Click(css("#replay-selected")))
	waitText(t, ctx, "main", "No dead letters.")
	require.Eventually(t, func() bool { acc, _ := down.counts(); return len(acc) == 1 }, 20*time.Second, 50*time.Millisecond,
		"waiting for the replayed message downstream")

	// Pause and resume.
	state, button := `#dests tr[data-destination="emr"] td.state`, `#dests tr[data-destination="emr"] button`
	do(t, ctx, chromedp.Navigate(base+"/ui/#/destinations"))
	waitText(t, ctx, state, "running")
	do(t, ctx, chromedp.Click(css(button)))
	waitText(t, ctx, state, "paused")
	do(t, ctx, chromedp.Click(css(button)))
	waitText(t, ctx, state, "running")

	// Every repetition of a segment has its fields' names: the 7th OBX.
	_, _, code = runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "oru_r01.hl7"))
	require.Equal(t, 0, code)
	openUntil(t, ctx, base+"/ui/#/messages?control_id=CNTRL-3456", "#results", "CNTRL-3456")
	do(t, ctx, chromedp.Click(css("#results a")))
	waitText(t, ctx, "#fields", "OBX[7]-3")
	name, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#fields tr")].find((tr) => tr.cells[0].textContent === "OBX[7]-3").cells[1].textContent`))
	require.NoError(t, err)
	assert.Equal(t, "Observation Identifier CE", name, "the field's name and data type, from the definitions of 2.5.1")
	// The component view: OBX[7]-3 opens into its components, named.
	do(t, ctx, chromedp.Click(css(`#fields tr[data-path="OBX[7]-3"] summary`)))
	waitText(t, ctx, `#fields tr[data-path="OBX[7]-3.2"]`, "Text")
	waitText(t, ctx, `#fields tr[data-path="OBX[7]-3.2"]`, "Service comment")
	waitText(t, ctx, `#fields tr[data-path="OBX[7]-3.3"]`, "Name of Coding System")
	waitText(t, ctx, `#fields tr[data-path="PV1-44"]`, "Admit Date/Time") // a field the old hand-kept table did not name

	// A hostile message is shown as text: no script ran, no image added.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostile.hl7"), []byte(hostileADT), 0o600))
	_, _, code = runCmd(t, "send", "--addr", adtAddr, filepath.Join(dir, "hostile.hl7"))
	require.Equal(t, 0, code)
	openUntil(t, ctx, base+"/ui/#/messages?control_id=HOSTILE-1", "#results", "HOSTILE-1")
	do(t, ctx, chromedp.Click(css("#results a")))
	waitText(t, ctx, "#fields", "<script>window.pwned=1</script>")
	waitText(t, ctx, "main", `"><img src=x onerror=window.pwned=2>`)
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
	require.NoError(t, err)
	assert.False(t, pwned, "a script from the message ran")
	images, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img").length`))
	require.NoError(t, err)
	assert.Zero(t, images, "markup from the message became an element")

	// A message refused (no MSH-9) is on the Refused page, without content.
	refusedMsg := "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20261206120000|||REF-9|P|2.5.1\rPID|1||MRN77^^^H^MR||Zyxwquist^Ann\r"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "refused.hl7"), []byte(refusedMsg), 0o600))
	_, _, _ = runCmd(t, "send", "--addr", adtAddr, filepath.Join(dir, "refused.hl7"))
	openUntil(t, ctx, base+"/ui/#/refused", "#refused", "REF-9")
	waitText(t, ctx, "#refused", "AR")
	refusedText, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").textContent`))
	require.NoError(t, err)
	assert.NotContains(t, refusedText, "Zyxwquist", "no content of a refused message")

	// A change without the CSRF token is refused, with the session cookie.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`fetch("/api/v1/destinations/emr/pause", {method: "POST", credentials: "same-origin"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, status)

	// Sign out; a viewer sees no content and no replay button.
	do(t, ctx, chromedp.Click(css("#signout")), chromedp.WaitVisible(css("#token")))
	signIn(victor, "victor (viewer)")
	openUntil(t, ctx, base+"/ui/#/messages?control_id=A04-778812", "#results", "A04-778812")
	do(t, ctx, chromedp.Click(css("#results a")))
	waitText(t, ctx, "main", "does not show message content")
	do(t, ctx, chromedp.Navigate(base+"/ui/#/dlq"))
	waitText(t, ctx, "h1", "Dead letters")
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#replay-selected, #purge-selected").length`))
	require.NoError(t, err)
	assert.Zero(t, buttons, "a viewer has no replay or purge buttons")
}
