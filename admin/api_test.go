package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tokens and roles: no token 401, a viewer 403 on content and on purge,
// an operator 403 on purge; each refusal audited with the token's name;
// /healthz stays open; history off answers 503 with why.
func TestAPITokensAndRoles(t *testing.T) {
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("victor", RoleViewer, "viewer-token-0123456789"), NewToken("olga", RoleOperator, "operator-token-0123456789")})
	var mu sync.Mutex
	var audit []wire.AuditEntry
	api := &API{Tokens: tokens, Status: func(context.Context) Status { return Status{Listeners: []ListenerStatus{{Name: "adt"}}} },
		Audit: func(_ context.Context, e wire.AuditEntry) error {
			mu.Lock()
			audit = append(audit, e)
			mu.Unlock()
			return nil
		}}
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	do := func(method, path, token string) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(`{"ids":["1"]}`))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("GET", "/api/v1/status", "")
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, _ = do("GET", "/api/v1/status", "wrong-token-0123456789")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body = do("GET", "/api/v1/status", "viewer-token-0123456789")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"name":"adt"`)
	code, body = do("GET", "/api/v1/messages/1", "viewer-token-0123456789")
	assert.Equal(t, http.StatusForbidden, code, "a viewer sees no content")
	assert.Contains(t, body, "role viewer")
	code, _ = do("POST", "/api/v1/dlq/purge", "operator-token-0123456789")
	assert.Equal(t, http.StatusForbidden, code, "purge is the admin's")
	code, body = do("GET", "/api/v1/messages/1", "operator-token-0123456789")
	assert.Equal(t, http.StatusServiceUnavailable, code, "history off")
	assert.Contains(t, body, "history.enabled")
	code, _ = do("GET", "/healthz", "")
	assert.Equal(t, http.StatusOK, code, "/healthz needs no token")

	mu.Lock()
	defer mu.Unlock()
	var who []string
	for _, e := range audit {
		assert.Equal(t, "request.refused", e.Action)
		who = append(who, e.User)
	}
	assert.Equal(t, []string{"", "", "victor", "olga"}, who, "every refusal is audited, with the token's name when valid")
}

// A client without a token can neither make the audit trail large nor
// try tokens quickly: each refusal's entry is cut to a small size; past
// ten refusals a minute an address gets 429 (Retry-After) and one entry
// that counts the rest; a valid token from that address still works.
func TestRefusedRequestsAreBoundedThrottledAndSummarised(t *testing.T) {
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("victor", RoleViewer, "viewer-token-0123456789")})
	var mu sync.Mutex
	var audit []wire.AuditEntry
	var size int
	api := &API{Tokens: tokens, Status: func(context.Context) Status { return Status{} },
		Audit: func(_ context.Context, e wire.AuditEntry) error {
			b, _ := json.Marshal(e.Bounded())
			mu.Lock()
			audit = append(audit, e)
			size += len(b)
			mu.Unlock()
			return nil
		}}
	clock := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	api.refusals.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	base := "http://" + s.Addr().String()
	get := func(path, token string) *http.Response {
		req, err := http.NewRequest("GET", base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	long := "/api/v1/" + strings.Repeat("x", 900<<10)
	codes := map[int]int{}
	for range 50 {
		resp := get(long, "")
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			assert.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 10, http.StatusTooManyRequests: 40}, codes)
	for range 3 { // sign-in attempts share the address's budget
		resp, err := http.Post(base+"/ui/login", "application/json", strings.NewReader(`{"token":"guess-0123456789"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "console sign-in is throttled too")
	}
	assert.Equal(t, http.StatusOK, get("/api/v1/status", "viewer-token-0123456789").StatusCode, "a valid token is never throttled")

	mu.Lock()
	assert.Len(t, audit, 10, "only the refusals within the budget are audited one by one")
	assert.Less(t, size, 10*1024, "ten entries for 9 MB of paths take under 10 KB")
	for _, e := range audit {
		assert.LessOrEqual(t, len(e.Bounded().Detail), wire.AuditMaxField)
		assert.Contains(t, e.Bounded().Detail, "bytes)", "a cut detail says how long it was")
	}
	mu.Unlock()

	clockMu.Lock()
	clock = clock.Add(61 * time.Second)
	clockMu.Unlock()
	assert.Equal(t, http.StatusUnauthorized, get("/api/v1/status", "").StatusCode, "a new window")
	require.NoError(t, s.Shutdown(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, audit, 12)
	summary := audit[10]
	assert.Equal(t, "request.refused", summary.Action)
	assert.Contains(t, summary.Result, "43 more refused requests", "40 API requests and 3 sign-ins, counted")
	assert.Equal(t, "127.0.0.1", summary.Remote)
	assert.Equal(t, "401 no valid token", audit[11].Result)
}
