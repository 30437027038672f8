package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testldap"
	"github.com/hl7broker/hl7broker/internal/testoidc"
)

// Single sign-on in a real browser against a real serve and a real
// OpenID provider: the console's button goes to the provider's form and
// back, signed in as the person with the role of their group; the
// session survives a restart of the broker; sign-out ends it (the old
// cookie no longer works); a person in no mapped group reads why.
func TestBrowserSingleSignOn(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	adminAddr, in := freePort(t), freePort(t)
	base := "http://" + adminAddr
	provider := testoidc.Start(t, base+"/ui/oidc/callback",
		testoidc.User{Name: "alice", Password: "alice-pw-1", Groups: []string{"integration-analysts"}},
		testoidc.User{Name: "bob", Password: "bob-pw-2", Groups: []string{"cafeteria"}})
	secretFile := filepath.Join(dir, "oidc-secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(provider.ClientSecret+"\n"), 0o600))
	cfg := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin:
  addr: "%s"
  tokens: [{name: ops, role: admin, token_file: %s}]
  oidc:
    issuer: %s
    client_id: %s
    client_secret: "${file:%s}"
    redirect_url: %s/ui/oidc/callback
    roles: {integration-analysts: operator}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [files]}]
destinations: [{name: files, type: file, dir: %s}]
`, filepath.Join(dir, "data"), adminAddr, writeToken(t, dir, "ops"), provider.Issuer, provider.ClientID, secretFile, base, in, filepath.Join(dir, "out")))
	p := startServeProcess(t, cfg)
	defer func() { p.kill() }()

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	do(t, ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css("#sso")))
	screenshot(t, ctx, "signin")
	do(t, ctx, chromedp.Click(css("#sso")), chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "alice"), chromedp.SendKeys(css("#password"), "alice-pw-1"), chromedp.Click(css("#signin")))
	waitText(t, ctx, "#who", "alice (operator)")
	assert.Equal(t, 1, provider.SignIns())

	cookies, err := chromedp.Run(ctx, func(c context.Context, tg *chromedp.Target) (*network.GetCookiesResult, error) {
		r, err := cdp.Call(c, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/ui/"}})
		return &r, err
	})
	require.NoError(t, err)
	var session string
	for _, ck := range cookies.Cookies {
		if ck.Name == "hl7broker_session" {
			session = ck.Value
		}
	}
	require.NotEmpty(t, session)

	// The broker restarts: alice is still signed in.
	require.NoError(t, p.stop(20*time.Second))
	p = startServeProcess(t, cfg)
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/ui/#/dashboard"))
	waitText(t, ctx, "#who", "alice (operator)")

	// Sign-out ends the session: its cookie no longer works anywhere.
	do(t, ctx, chromedp.Click(css("#signout")), chromedp.WaitVisible(css("#sso")))
	req, _ := http.NewRequest("GET", base+"/ui/session", nil)
	var resp *http.Response
	req.AddCookie(&http.Cookie{Name: "hl7broker_session", Value: session})
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the signed-out session's cookie is refused")

	// bob's groups map to no role: back on the sign-in page, with why.
	do(t, ctx, chromedp.Click(css("#sso")), chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "bob"), chromedp.SendKeys(css("#password"), "bob-pw-2"), chromedp.Click(css("#signin")))
	waitText(t, ctx, "#main", "no group that this broker gives a role")
}

// Sign-in with a directory's password in a real browser against a real
// serve and a real slapd: the console shows the user name and password
// form; a wrong password reads why and signs no one in; the right one
// signs in with the role of the person's group.
func TestBrowserSignsInWithADirectoryPassword(t *testing.T) {
	ctx := browser(t)
	dir := testldap.Start(t)
	svc := dir.AddUser("svc-hl7broker", "svc-secret-9")
	alice := dir.AddUser("alice", "alice-secret-1")
	dir.AddGroup("integration", alice)
	tmp := t.TempDir()
	pwFile := filepath.Join(tmp, "ldap-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("svc-secret-9\n"), 0o600))
	adminAddr, in := freePort(t), freePort(t)
	base := "http://" + adminAddr
	cfg := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin:
  addr: "%s"
  ldap:
    url: %s
    bind_dn: "%s"
    bind_password: "${file:%s}"
    user_base: "%s"
    roles: {integration: operator}
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [files]}]
destinations: [{name: files, type: file, dir: %s}]
`, filepath.Join(tmp, "data"), adminAddr, dir.URL, svc, pwFile, testldap.People, in, filepath.Join(tmp, "out")))
	p := startServeProcess(t, cfg)
	defer p.kill()

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	do(t, ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css("#signin-ldap")),
		chromedp.SendKeys(css("#username"), "alice"), chromedp.SendKeys(css("#password"), "not-it"), chromedp.Click(css("#signin-ldap button")))
	waitText(t, ctx, "#signin-error", "wrong user name or password")
	do(t, ctx, chromedp.SendKeys(css("#password"), "alice-secret-1"), chromedp.Click(css("#signin-ldap button")))
	waitText(t, ctx, "#who", "alice (operator)")
	assert.NotContains(t, p.stderr.String(), "alice-secret-1")
	assert.NotContains(t, p.stderr.String(), "not-it")
	assert.NotContains(t, p.stderr.String(), "svc-secret-9")
}
