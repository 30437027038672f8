package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No audit entry, no content: while the audit trail cannot store an
// entry, a message, a dead letter, a search by a patient's key and the
// trail itself are answered 503 without content, and no change is made;
// once it can, each view is answered and audited.
func TestNoAuditEntryNoContent(t *testing.T) {
	p := startPipeline(t, historyConfig(t, t.TempDir()))
	require.Equal(t, hl7.AA, p.send(t, "in", adtMsg("AU-1", "MRN1", "A08")))
	require.Equal(t, hl7.AA, p.send(t, "in", oruMsg("AU-2"))) // dead-lettered for "down"
	var letter string
	testkit.WaitFor(t, 20*time.Second, func() error {
		d, err := p.ops.Index.DeadLetters(context.Background(), history.DLQFilter{})
		if err != nil || len(d.Items) != 1 {
			return fmt.Errorf("waiting for one dead letter: %v %+v", err, d.Items)
		}
		letter = d.Items[0].ID
		return nil
	})

	var failing atomic.Bool
	var mu sync.Mutex
	var trail []wire.AuditEntry
	full := errors.New("the data folder's disk is full")
	tokens := &admin.Tokens{}
	tokens.Set([]admin.Token{admin.NewToken("olga", admin.RoleAdmin, "admin-token-0123456789")})
	api := &admin.API{Tokens: tokens, Ops: p.ops, SearchKeys: []string{"mrn"},
		Status: func(context.Context) admin.Status { return admin.Status{} },
		Audit: func(_ context.Context, e wire.AuditEntry) error {
			if failing.Load() {
				return full
			}
			mu.Lock()
			trail = append(trail, e)
			mu.Unlock()
			return nil
		},
		AuditReady: func(context.Context) error {
			if failing.Load() {
				return full
			}
			return nil
		}}
	do := serveAPI(t, api)
	views := []struct{ action, method, path, body string }{
		{"message.view", "GET", "/api/v1/messages/1", ""},
		{"dlq.view", "GET", "/api/v1/dlq/" + letter, ""},
		{"message.search", "GET", "/api/v1/messages?key.mrn=MRN1", ""},
		{"audit.read", "GET", "/api/v1/audit", ""},
		{"destination.pause", "POST", "/api/v1/destinations/files/pause", ""},
		{"dlq.replay", "POST", "/api/v1/dlq/replay", `{"ids":["` + letter + `"]}`},
	}

	failing.Store(true)
	for _, v := range views {
		code, body := do(v.method, v.path, v.body)
		assert.Equal(t, http.StatusServiceUnavailable, code, "%s while the audit fails: %s", v.action, body)
		assert.Contains(t, body, "audit trail", v.action)
		assert.NotContains(t, body, "MSH|", "%s: no content", v.action)
		assert.NotContains(t, body, "Müller", "%s: no content", v.action)
	}
	d, err := p.ops.Index.DeadLetters(context.Background(), history.DLQFilter{})
	require.NoError(t, err)
	assert.Len(t, d.Items, 1, "no replay was made")

	failing.Store(false)
	for _, v := range views {
		code, body := do(v.method, v.path, v.body)
		assert.Equal(t, http.StatusOK, code, "%s: %s", v.action, body)
	}
	mu.Lock()
	defer mu.Unlock()
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
		if e.Action == "message.search" {
			assert.Equal(t, "key.mrn=MRN1", e.Detail, "who looked for which patient")
			assert.Equal(t, []string{"1"}, e.IDs, "and which messages it found")
		}
	}
	assert.Equal(t, []string{"message.view", "dlq.view", "message.search", "audit.read", "destination.pause", "dlq.replay"}, actions)
}

// With history off, the endpoints that need the index answer 503 with
// why (they used to panic on the missing index: an empty reply), and
// pause and resume still work, as the docs say.
func TestHistoryOffAnswers503AndPauseStillWorks(t *testing.T) {
	cfg := historyConfig(t, t.TempDir())
	cfg.History.Enabled = false
	p := startPipeline(t, cfg)
	tokens := &admin.Tokens{}
	tokens.Set([]admin.Token{admin.NewToken("olga", admin.RoleAdmin, "admin-token-0123456789")})
	api := &admin.API{Tokens: tokens, Ops: p.ops, Status: func(context.Context) admin.Status { return admin.Status{} },
		Audit: func(context.Context, wire.AuditEntry) error { return nil }}
	serve := serveAPI(t, api)
	do := func(method, path string) (int, string) { return serve(method, path, `{"all":true}`) }
	for _, path := range []string{"/api/v1/messages", "/api/v1/messages/1", "/api/v1/dlq", "/api/v1/dlq/1", "/api/v1/audit"} {
		code, body := do("GET", path)
		assert.Equal(t, http.StatusServiceUnavailable, code, path)
		assert.Contains(t, body, "history.enabled", path)
	}
	code, body := do("POST", "/api/v1/dlq/replay")
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	code, body = do("POST", "/api/v1/destinations/files/pause")
	assert.Equal(t, http.StatusOK, code, body)
	paused, err := p.ops.Paused(context.Background())
	require.NoError(t, err)
	assert.True(t, paused["files"])
	code, body = do("POST", "/api/v1/destinations/files/resume")
	assert.Equal(t, http.StatusOK, code, body)
}

// serveAPI serves api on 127.0.0.1 for the test and returns a request
// maker that shows olga's admin token.
func serveAPI(t *testing.T, api *admin.API) func(method, path, body string) (int, string) {
	t.Helper()
	s := &admin.Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) admin.Readiness { return admin.Readiness{Ready: true} },
		Log: zerolog.Nop(), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, "http://"+s.Addr().String()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

// An audit by patient: two people view and replay messages of one MRN
// (and one views another patient's); the trail asked for that MRN lists
// exactly their actions on it, newest first, and exports them as CSV.
func TestAuditByPatient(t *testing.T) {
	cfg := historyConfig(t, t.TempDir())
	cfg.Admin.Addr = "127.0.0.1:0"
	p := startPipeline(t, cfg)
	p.tokens.Set([]admin.Token{admin.NewToken("alice", admin.RoleOperator, "alice-token-0123456789"),
		admin.NewToken("bob", admin.RoleOperator, "bob-token-0123456789"), admin.NewToken("olga", admin.RoleAdmin, "admin-token-0123456789")})
	for _, m := range []string{adtMsg("P-1", "MRN1", "A08"), adtMsg("P-2", "MRN1", "A08"), adtMsg("P-3", "MRN2", "A08")} {
		require.Equal(t, hl7.AA, p.send(t, "in", m))
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		pg, err := p.ops.Index.Search(context.Background(), history.Filter{})
		if err != nil || len(pg.Items) != 3 {
			return fmt.Errorf("waiting for 3 messages in the index: %v %d", err, len(pg.Items))
		}
		return nil
	})
	call := func(token, method, path, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+p.AdminAddr().String()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, path, b)
		return string(b)
	}
	alice, bob := "alice-token-0123456789", "bob-token-0123456789"
	call(alice, "GET", "/api/v1/messages/1", "")
	call(bob, "GET", "/api/v1/messages/2", "")
	call(bob, "GET", "/api/v1/messages/3", "") // the other patient
	call(alice, "POST", "/api/v1/messages/replay", `{"ids":["2"]}`)
	call(bob, "GET", "/api/v1/messages?type=ADT&key.mrn=MRN2", "")

	want := []string{"alice message.replay [2]", "bob message.view [2]", "alice message.view [1]"}
	var got []string
	testkit.WaitFor(t, 20*time.Second, func() error {
		var page history.AuditPage
		require.NoError(t, json.Unmarshal([]byte(call("admin-token-0123456789", "GET", "/api/v1/audit?key.mrn=MRN1", "")), &page))
		got = nil
		for _, it := range page.Items {
			got = append(got, fmt.Sprintf("%s %s %v", it.User, it.Action, it.IDs))
			assert.Equal(t, []string{"MRN1"}, it.Keys["mrn"])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("waiting for the trail of MRN1 to be %v; it is %v", want, got)
		}
		return nil
	})
	other := call("admin-token-0123456789", "GET", "/api/v1/audit?key.mrn=MRN2", "")
	assert.Contains(t, other, `"message.search"`, "a search is audited with what it found")
	assert.Contains(t, other, "type=ADT", "and its criteria")

	csv := call("admin-token-0123456789", "GET", "/api/v1/audit?key.mrn=MRN1&format=csv", "")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	require.Len(t, lines, 4, csv)
	assert.Equal(t, "seq,at,user,action,result,ids,keys,detail,remote", lines[0])
	assert.Contains(t, lines[1], ",alice,message.replay,")
	assert.Contains(t, lines[1], ",mrn=MRN1,")
}
