package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

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
