package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (cc *consoleClient) do(method, path, body string, csrf bool) (int, string, http.Header) {
	req, err := http.NewRequest(method, cc.base+path, strings.NewReader(body))
	require.NoError(cc.t, err)
	if csrf {
		req.Header.Set("X-CSRF-Token", cc.csrf)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cc.c.Do(req)
	require.NoError(cc.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func startConsoleServer(t *testing.T, tokens *Tokens) string {
	t.Helper()
	api := &API{Tokens: tokens, Status: func(context.Context) Status { return Status{Listeners: []ListenerStatus{{Name: "adt"}}} }}
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + s.Addr().String()
}

// The console's session: sign-in with a token sets an HttpOnly,
// SameSite=Strict cookie; the cookie then authenticates API requests
// with the token's role; a change without the CSRF token is refused; a
// token removed on reload ends its sessions; sign-out ends the session.
// The console's pages carry a Content Security Policy without
// 'unsafe-inline'.
func TestConsoleSession(t *testing.T) {
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("olga", RoleOperator, "operator-token-0123456789")})
	base := startConsoleServer(t, tokens)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	cc := &consoleClient{t: t, base: base, c: &http.Client{Jar: jar}}

	code, _, hdr := cc.do("GET", "/ui/", "", false)
	require.Equal(t, http.StatusOK, code)
	csp := hdr.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.Equal(t, "nosniff", hdr.Get("X-Content-Type-Options"))

	code, _, _ = cc.do("GET", "/ui/session", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "not signed in yet")
	code, body, _ := cc.do("POST", "/ui/login", `{"token":"not-a-token-0123456789"}`, false)
	assert.Equal(t, http.StatusUnauthorized, code, body)

	code, body, hdr = cc.do("POST", "/ui/login", `{"token":"operator-token-0123456789"}`, false)
	require.Equal(t, http.StatusOK, code, body)
	cookie := hdr.Get("Set-Cookie")
	assert.Contains(t, cookie, SessionCookie+"=")
	assert.Contains(t, cookie, "HttpOnly")
	assert.Contains(t, cookie, "SameSite=Strict")
	assert.NotContains(t, body, "operator-token", "the token is never sent back")
	var info sessionInfo
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, "olga", info.User)
	assert.Equal(t, RoleOperator, info.Role)
	require.NotEmpty(t, info.CSRF)
	cc.csrf = info.CSRF

	code, body, _ = cc.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusOK, code, "the cookie authenticates: "+body)
	code, body, _ = cc.do("POST", "/api/v1/destinations/emr/pause", "", false)
	assert.Equal(t, http.StatusForbidden, code, "a change without the CSRF token")
	assert.Contains(t, body, "CSRF")
	code, body, _ = cc.do("POST", "/api/v1/destinations/emr/pause", "", true)
	assert.NotEqual(t, http.StatusForbidden, code, "with the CSRF token the request goes through: "+body)
	assert.NotEqual(t, http.StatusUnauthorized, code, body)

	// A token removed on reload ends its sessions.
	tokens.Set([]Token{NewToken("other", RoleAdmin, "another-token-0123456789")})
	code, _, _ = cc.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "the session's token was removed")

	tokens.Set([]Token{NewToken("olga", RoleOperator, "operator-token-0123456789")})
	code, body, _ = cc.do("POST", "/ui/login", `{"token":"operator-token-0123456789"}`, false)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	cc.csrf = info.CSRF
	code, _, _ = cc.do("POST", "/ui/logout", "", false)
	assert.Equal(t, http.StatusForbidden, code, "sign-out is a change too: CSRF-checked")
	code, _, _ = cc.do("POST", "/ui/logout", "", true)
	assert.Equal(t, http.StatusNoContent, code)
	code, _, _ = cc.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusUnauthorized, code, "signed out")
}

// Behind a TLS proxy (X-Forwarded-Proto: https) the session cookie is
// Secure; served over plain HTTP to a browser on this machine it cannot
// be (a browser would drop it).
func TestSessionCookieIsSecureBehindATLSProxy(t *testing.T) {
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("olga", RoleOperator, "operator-token-0123456789")})
	base := startConsoleServer(t, tokens)
	for _, proto := range []string{"", "https"} {
		req, err := http.NewRequest("POST", base+"/ui/login", strings.NewReader(`{"token":"operator-token-0123456789"}`))
		require.NoError(t, err)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, resp.Cookies(), 1)
		assert.Equal(t, proto == "https", resp.Cookies()[0].Secure, "X-Forwarded-Proto %q", proto)
	}
}
