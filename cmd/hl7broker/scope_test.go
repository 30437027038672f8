package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A lab analyst's token (sources: [lab]) finds lab messages only; an ADT
// message is refused with 403 in the API and exit code 3 in the CLI, to
// show and to replay; a filter naming the ADT listener is refused too.
func TestATokenLimitedToOneSourceSeesOnlyItsMessages(t *testing.T) {
	down := startDownstream(t)
	down.accept.Store(true)
	dir := t.TempDir()
	alice, lara := writeToken(t, dir, "alice"), writeToken(t, dir, "lara")
	adminAddr, adtAddr, labAddr := freePort(t), freePort(t), freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin:
  addr: "%s"
  tokens:
    - {name: alice, role: operator, token_file: %s}
    - {name: lara, role: operator, token_file: %s, sources: [lab]}
listeners:
  - {name: adt, addr: "%s"}
  - {name: lab, addr: "%s"}
routes:
  - {name: all, to: [emr]}
destinations:
  - {name: emr, type: mllp, addr: "%s"}
`, filepath.Join(dir, "data"), adminAddr, alice, lara, adtAddr, labAddr, down.addr))
	p := startServeProcess(t, cfg)
	defer p.kill()
	server := "http://" + adminAddr
	_, _, code := runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "adt_a04_lf.hl7"))
	require.Equal(t, 0, code)
	_, _, code = runCmd(t, "send", "--addr", labAddr, filepath.Join(testdata, "oru_r01.hl7"))
	require.Equal(t, 0, code)

	var page struct {
		Items []struct{ ID, Listener string } `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &page, "messages", "search")
		return code == 0 && len(page.Items) == 2
	}, 20*time.Second, 50*time.Millisecond, "waiting for both messages in the index")
	ids := map[string]string{}
	for _, it := range page.Items {
		ids[it.Listener] = it.ID
	}

	_, code = cli(t, server, lara, &page, "messages", "search")
	require.Equal(t, 0, code)
	require.Len(t, page.Items, 1, "lara finds the lab message only")
	assert.Equal(t, "lab", page.Items[0].Listener)

	api := func(token, method, path, body string) (int, string) {
		req, err := http.NewRequest(method, server+path, strings.NewReader(body))
		require.NoError(t, err)
		b, _ := os.ReadFile(token)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	c, body := api(lara, "GET", "/api/v1/messages/"+ids["adt"], "")
	assert.Equal(t, http.StatusForbidden, c, body)
	assert.NotContains(t, body, "MSH|", "no content")
	assert.Contains(t, body, "adt")
	c, _ = api(lara, "GET", "/api/v1/messages/"+ids["lab"], "")
	assert.Equal(t, http.StatusOK, c)
	c, body = api(lara, "GET", "/api/v1/messages?listener=adt", "")
	assert.Equal(t, http.StatusForbidden, c, body)
	c, body = api(lara, "POST", "/api/v1/messages/replay", `{"ids":["`+ids["adt"]+`"]}`)
	assert.Equal(t, http.StatusForbidden, c, body)

	out, code := cli(t, server, lara, nil, "messages", "show", ids["adt"])
	assert.Equal(t, 3, code, "the CLI's exit code for a refusal: %s", out)
	out, code = cli(t, server, lara, nil, "messages", "replay", ids["adt"])
	assert.Equal(t, 3, code, out)
	_, code = cli(t, server, alice, nil, "messages", "show", ids["adt"])
	assert.Equal(t, 0, code, "alice sees every source")

	// The console says the same: lara's search lists the lab message
	// only, and the ADT message's page says why it is not shown.
	ctx := browser(t)
	tok, _ := os.ReadFile(lara)
	do(t, ctx, chromedp.Navigate(server+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), strings.TrimSpace(string(tok))), chromedp.Click(chromedp.CSS("#signin button[type=submit]")))
	waitText(t, ctx, "#who", "lara (operator)")
	// A page load of its own (the session cookie signs it in), not a hash
	// change that the dashboard, still rendering after sign-in, can undo.
	do(t, ctx, chromedp.Navigate(server+"/ui/?view=messages#/messages"))
	waitText(t, ctx, "main", "CNTRL-3456")
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("results").textContent`))
	require.NoError(t, err)
	assert.NotContains(t, text, "A04-778812", "the ADT message is not listed")
	do(t, ctx, chromedp.Navigate(server+"/ui/#/message/"+ids["adt"]))
	waitText(t, ctx, "main", "may not see or act on messages from adt")
}
