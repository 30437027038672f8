package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/store"
)

// Saved searches are each person's own, kept in the store (another
// broker sees them), named, replaced by name, bounded, deleted; a query
// is the filters of GET /api/v1/messages, nothing else; saving and
// deleting are audited with the name.
func TestSavedSearchesArePerPersonAndKeptInTheStore(t *testing.T) {
	kv := sessionKV(t)
	searches := store.SearchesKV{JetStream: kv.JetStream}
	audit := &auditLog{}
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("alice", RoleViewer, "alice-token-0123456789"), NewToken("bob", RoleOperator, "bob-token-0123456789")})
	start := func() string {
		api := &API{Tokens: tokens, Searches: searches, Audit: audit.add, Status: func(context.Context) Status { return Status{} }}
		s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
		require.NoError(t, s.Start("127.0.0.1:0"))
		t.Cleanup(func() { s.Shutdown(context.Background()) })
		return "http://" + s.Addr().String()
	}
	one, other := start(), start()
	call := func(base, token, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(resp))
		return resp.StatusCode, b.String()
	}
	alice, bob := "alice-token-0123456789", "bob-token-0123456789"

	code, body := call(one, alice, "PUT", "/api/v1/searches/Lab%20errors%20today", `{"query":"listener=lab&status=dead_lettered&from=2026-12-07"}`)
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = call(one, alice, "PUT", "/api/v1/searches/Nguyen", `{"query":"key.family=ngu*"}`)
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = call(one, alice, "PUT", "/api/v1/searches/Nguyen", `{"query":"key.family=nguyen*&type=ADT"}`)
	require.Equal(t, http.StatusNoContent, code, "saving under a name again replaces it: %s", body)

	code, body = call(other, alice, "GET", "/api/v1/searches", "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"name":"Lab errors today","query":"listener=lab\u0026status=dead_lettered\u0026from=2026-12-07"`, "another broker sees them")
	assert.Contains(t, body, `"query":"key.family=nguyen*\u0026type=ADT"`)
	assert.Equal(t, 2, strings.Count(body, `"name"`))

	code, body = call(one, bob, "GET", "/api/v1/searches", "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"items":[]}`, body, "bob sees only his own")

	for _, bad := range []string{`{"query":"drop=table"}`, `{"query":"%zz"}`, `{"query":"` + strings.Repeat("a", 2001) + `"}`} {
		code, body = call(one, bob, "PUT", "/api/v1/searches/x", bad)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", bad[:min(len(bad), 30)], body)
	}
	code, _ = call(one, bob, "PUT", "/api/v1/searches/"+strings.Repeat("n", 65), `{"query":"type=ADT"}`)
	assert.Equal(t, http.StatusBadRequest, code, "a name of 65 characters")

	// Saves racing on two brokers are all kept.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := []string{one, other}[i%2]
			code, body := call(base, bob, "PUT", fmt.Sprintf("/api/v1/searches/s%d", i), `{"query":"type=ORU"}`)
			assert.Equal(t, http.StatusNoContent, code, body)
		}()
	}
	wg.Wait()
	list, err := searches.SavedSearches(context.Background(), "bob")
	require.NoError(t, err)
	assert.Len(t, list, 10, "no save lost to another")
	for i := 10; i < maxSavedSearches; i++ {
		code, _ = call(one, bob, "PUT", fmt.Sprintf("/api/v1/searches/s%d", i), `{"query":"type=ORU"}`)
		require.Equal(t, http.StatusNoContent, code)
	}
	code, body = call(one, bob, "PUT", "/api/v1/searches/one-too-many", `{"query":"type=ORU"}`)
	assert.Equal(t, http.StatusConflict, code, body)

	code, _ = call(other, alice, "DELETE", "/api/v1/searches/Nguyen", "")
	assert.Equal(t, http.StatusNoContent, code)
	code, _ = call(other, alice, "DELETE", "/api/v1/searches/Nguyen", "")
	assert.Equal(t, http.StatusNotFound, code)
	_, body = call(one, alice, "GET", "/api/v1/searches", "")
	assert.NotContains(t, body, "Nguyen")
	assert.Len(t, audit.find("search.save", "alice"), 3)
	deleted := audit.find("search.delete", "alice")
	require.Len(t, deleted, 1)
	assert.Equal(t, "Nguyen", deleted[0].Detail)
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
