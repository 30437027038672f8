package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testoidc"
	"github.com/hl7broker/hl7broker/wire"
)

// auditLog collects audit entries.
type auditLog struct {
	mu      sync.Mutex
	entries []wire.AuditEntry
}

func (l *auditLog) add(_ context.Context, e wire.AuditEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	return nil
}

func (l *auditLog) find(action, user string) []wire.AuditEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []wire.AuditEntry
	for _, e := range l.entries {
		if e.Action == action && e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// startPeopleServer is an admin server whose people sign in through ways,
// with sessions in the store (every broker of a cluster, and a restart,
// see them).
func startPeopleServer(t *testing.T, ways *Ways, audit *auditLog, kv SessionStore, clock func() time.Time) string {
	t.Helper()
	api := &API{Tokens: &Tokens{}, People: ways, Audit: audit.add, Sessions: Sessions{Store: kv, now: clock},
		Status: func(context.Context) Status { return Status{} }}
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + s.Addr().String()
}

// Single sign-on through a real OpenID provider running in the test:
// groups map to roles; a person in no mapped group is refused, and so is
// an ID token changed after signing; the session is the person's, kept
// in the store (another broker, or this one restarted, knows it), ends
// everywhere at sign-out, and ends when a reload takes the group's role
// away. Each step is in the audit trail under the person's name.
func TestSingleSignOnThroughAnOpenIDProvider(t *testing.T) {
	kv := sessionKV(t)
	ways, audit := &Ways{}, &auditLog{}
	var mu sync.Mutex
	later := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(later) }
	base := startPeopleServer(t, ways, audit, kv, nil)
	other := startPeopleServer(t, ways, audit, kv, clock) // a second broker, or the first after a restart
	provider := testoidc.Start(t, base+"/ui/oidc/callback",
		testoidc.User{Name: "alice", Password: "alice-pw", Email: "alice@example.org", Groups: []string{"integration-analysts", "staff"}},
		testoidc.User{Name: "bob", Password: "bob-pw", Groups: []string{"cafeteria"}},
		testoidc.User{Name: "carol", Password: "carol-pw", Groups: []string{"helpdesk"}})
	roles := map[string]string{"integration-analysts": RoleOperator, "helpdesk": RoleViewer, "integration-admins": RoleAdmin}
	sso := func(roles map[string]string) *OIDC {
		return &OIDC{Issuer: provider.Issuer, ClientID: provider.ClientID, ClientSecret: provider.ClientSecret,
			RedirectURL: base + "/ui/oidc/callback", Roles: roles}
	}
	ways.Set(sso(roles), nil)

	browser := func() *consoleClient { return newBrowser(t, base) }
	code, body, _ := browser().do("GET", "/ui/sign-in", "", false)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"ways":["token","oidc"]}`, body, "the sign-in page learns which ways are on")

	// alice: an analyst, operator.
	alice := browser()
	resp, _, err := testoidc.SignIn(alice.c, base+"/ui/oidc/login", "alice", "alice-pw")
	require.NoError(t, err)
	require.Equal(t, "/ui/", resp.Request.URL.Path, "back on the console: %s", resp.Request.URL)
	code, body, _ = alice.do("GET", "/ui/session", "", false)
	require.Equal(t, http.StatusOK, code, body)
	var info sessionInfo
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, "alice", info.User)
	assert.Equal(t, RoleOperator, info.Role, "integration-analysts -> operator")
	alice.csrf = info.CSRF
	require.Len(t, audit.find("console.sign_in", "alice"), 1)
	assert.Equal(t, "oidc", audit.find("console.sign_in", "alice")[0].Detail)

	// The session lives in the store: the other broker knows it.
	elsewhere := &consoleClient{t: t, base: other, c: &http.Client{Jar: alice.c.Jar}}
	for _, c := range alice.c.Jar.Cookies(mustURL(t, base+"/ui/")) {
		elsewhere.c.Jar.SetCookies(mustURL(t, other+"/ui/"), []*http.Cookie{c})
	}
	code, body, _ = elsewhere.do("GET", "/ui/session", "", false)
	require.Equal(t, http.StatusOK, code, "another broker (or a restart) keeps alice signed in: %s", body)
	code, _, _ = alice.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusOK, code)

	// bob is in no mapped group: refused, with why, and audited.
	bob := browser()
	resp, _, err = testoidc.SignIn(bob.c, base+"/ui/oidc/login", "bob", "bob-pw")
	require.NoError(t, err)
	assert.Contains(t, signInError(resp.Request.URL), "no group", "the sign-in page says why: %s", resp.Request.URL)
	code, _, _ = bob.do("GET", "/ui/session", "", false)
	assert.Equal(t, http.StatusUnauthorized, code)
	require.Len(t, audit.find("console.sign_in", "bob"), 1)
	assert.Contains(t, audit.find("console.sign_in", "bob")[0].Result, "refused")

	// An ID token whose payload was changed after signing (carol made
	// an admin on the way) is refused.
	provider.TamperIDTokens(true)
	carol := browser()
	resp, _, err = testoidc.SignIn(carol.c, base+"/ui/oidc/login", "carol", "carol-pw")
	require.NoError(t, err)
	assert.Contains(t, signInError(resp.Request.URL), "signature", "%s", resp.Request.URL)
	code, _, _ = carol.do("GET", "/ui/session", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "no session from a tampered token")
	provider.TamperIDTokens(false)
	resp, _, err = testoidc.SignIn(carol.c, base+"/ui/oidc/login", "carol", "carol-pw")
	require.NoError(t, err)
	code, body, _ = carol.do("GET", "/ui/session", "", false)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"role":"viewer"`)

	// A callback that was not started here is refused (state).
	stranger := browser()
	resp, err = stranger.c.Get(base + "/ui/oidc/callback?code=x&state=y")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, signInError(resp.Request.URL), "not started here")

	// A reload that takes the helpdesk's role away ends carol's session.
	ways.Set(sso(map[string]string{"integration-analysts": RoleOperator}), nil)
	code, _, _ = carol.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "carol's group maps to no role any more")
	code, _, _ = alice.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusOK, code, "alice's still does")

	// Sign-out ends alice's session on every broker.
	code, _, _ = alice.do("POST", "/ui/logout", "", true)
	require.Equal(t, http.StatusNoContent, code)
	mu.Lock()
	later = sessionRecheck + time.Second // the other broker asks the store again
	mu.Unlock()
	code, _, _ = elsewhere.do("GET", "/ui/session", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "signed out everywhere")
	require.Len(t, audit.find("console.sign_out", "alice"), 1)
	for _, e := range audit.entries {
		assert.NotContains(t, e.Detail+e.Result, "pw", "no password in the audit trail")
	}
}

// signInError is the reason the console's sign-in page shows.
func signInError(u *url.URL) string {
	_, query, _ := strings.Cut(u.EscapedFragment(), "?")
	q, _ := url.ParseQuery(query)
	return q.Get("error")
}

// newBrowser is a console client with its own cookies.
func newBrowser(t *testing.T, base string) *consoleClient {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &consoleClient{t: t, base: base, c: &http.Client{Jar: jar}}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// RoleOf takes the highest role a person's groups map to; a directory
// group matches by its DN or its CN.
func TestRoleOfGroups(t *testing.T) {
	roles := map[string]string{"Lab": RoleViewer, "cn=integration,ou=groups,dc=example,dc=org": RoleOperator, "admins": RoleAdmin}
	for _, c := range []struct {
		groups []string
		want   string
	}{
		{[]string{"CN=Lab,OU=Groups,DC=example,DC=org"}, RoleViewer},
		{[]string{"lab", "CN=Integration,OU=Groups,DC=example,DC=org"}, RoleOperator},
		{[]string{"staff", "Admins"}, RoleAdmin},
		{[]string{"CN=Laboratory,OU=Groups"}, ""},
		{nil, ""},
	} {
		got, ok := RoleOf(c.groups, roles)
		assert.Equal(t, c.want, got, "%v", c.groups)
		assert.Equal(t, c.want != "", ok)
	}
}

// A group's limits narrow what its people see, as a token's sources and
// destinations do; a person also in a group without limits is not
// limited; sources and destinations are limited apart.
func TestLimitsOfGroups(t *testing.T) {
	roles := map[string]string{"lab-analysts": RoleOperator, "radiology": RoleViewer, "integration": RoleAdmin, "emr-watchers": RoleViewer}
	limits := map[string]Limits{"lab-analysts": {Sources: []string{"lab"}}, "radiology": {Sources: []string{"rad"}, Destinations: []string{"ris"}},
		"emr-watchers": {Destinations: []string{"emr"}}}
	for _, c := range []struct {
		groups []string
		want   Limits
	}{
		{[]string{"lab-analysts"}, Limits{Sources: []string{"lab"}}},
		{[]string{"lab-analysts", "radiology"}, Limits{Sources: []string{"lab", "rad"}}},
		{[]string{"radiology", "emr-watchers"}, Limits{Sources: nil, Destinations: []string{"emr", "ris"}}},
		{[]string{"lab-analysts", "integration"}, Limits{}},
		{[]string{"CN=lab-analysts,OU=Groups,DC=example,DC=org", "staff"}, Limits{Sources: []string{"lab"}}},
	} {
		assert.Equal(t, c.want, LimitsOf(c.groups, roles, limits), "%v", c.groups)
	}
	w := &Ways{}
	w.Set(&OIDC{Roles: roles, Limits: limits}, nil)
	tok, ok := w.token(Person{Name: "lara", Via: "oidc", Groups: []string{"lab-analysts"}})
	require.True(t, ok)
	assert.True(t, tok.MaySee("lab"))
	assert.False(t, tok.MaySee("adt"), "a lab analyst signed in by single sign-on sees lab messages only")
	assert.True(t, tok.MayUse("emr"))
}
