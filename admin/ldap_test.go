package admin

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testldap"
)

// Sign-in with a directory's password, against a real slapd: the
// person's groups (memberOf) map to a role; a wrong password, an empty
// one and a filter-shaped name are refused alike; a person in no mapped
// group is refused with why; the directory down answers 503 with why.
// No password reaches the audit trail or the log.
func TestSignInWithADirectoryPassword(t *testing.T) {
	dir := testldap.Start(t)
	svc := dir.AddUser("svc-hl7broker", "svc-secret-7")
	alice := dir.AddUser("alice", "alice-secret-1")
	bob := dir.AddUser("bob", "bob-secret-2")
	dave := dir.AddUser("dave", "dave-secret-4")
	dir.AddGroup("integration", alice)
	dir.AddGroup("lab", bob)
	dir.AddGroup("cafeteria", dave)

	ways, audit := &Ways{}, &auditLog{}
	var logs bytes.Buffer
	api := &API{Tokens: &Tokens{}, People: ways, Audit: audit.add, Status: func(context.Context) Status { return Status{} }}
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.New(&logs), API: api}
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	base := "http://" + s.Addr().String()
	directory := &LDAP{URL: dir.URL, BindDN: svc, BindPassword: "svc-secret-7", UserBase: testldap.People,
		Roles: map[string]string{"integration": RoleOperator, "cn=lab,ou=groups,dc=example,dc=org": RoleViewer}}
	ways.Set(nil, directory)

	browser := func() *consoleClient { return newBrowser(t, base) }
	code, body, _ := browser().do("GET", "/ui/sign-in", "", false)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"ways":["token","ldap"]}`, body)

	a := browser()
	code, body, _ = a.do("POST", "/ui/login", `{"username":"alice","password":"alice-secret-1"}`, false)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"user":"alice"`)
	assert.Contains(t, body, `"role":"operator"`, "the group integration, by its CN")
	code, _, _ = a.do("GET", "/api/v1/status", "", false)
	assert.Equal(t, http.StatusOK, code)

	b := browser()
	code, body, _ = b.do("POST", "/ui/login", `{"username":"bob","password":"bob-secret-2"}`, false)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"role":"viewer"`, "the group lab, by its DN")

	for _, try := range []string{
		`{"username":"alice","password":"not-her-password"}`,
		`{"username":"alice","password":""}`, // an unauthenticated bind would "succeed"
		`{"username":"*","password":"alice-secret-1"}`,
		`{"username":"*)(uid=*","password":"x"}`,
		`{"username":"nobody","password":"x"}`,
	} {
		code, body, _ = browser().do("POST", "/ui/login", try, false)
		assert.Equal(t, http.StatusUnauthorized, code, "%s: %s", try, body)
		assert.Contains(t, body, "wrong user name or password", try)
	}

	code, body, _ = browser().do("POST", "/ui/login", `{"username":"dave","password":"dave-secret-4"}`, false)
	assert.Equal(t, http.StatusForbidden, code, body)
	assert.Contains(t, body, "no group")

	directory2 := *directory
	directory2.URL = "ldap://127.0.0.1:1"
	ways.Set(nil, &directory2)
	code, body, _ = browser().do("POST", "/ui/login", `{"username":"alice","password":"alice-secret-1"}`, false)
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Contains(t, body, "the directory could not be asked")

	signIns := audit.find("console.sign_in", "alice")
	require.Len(t, signIns, 2, "alice's sign-in, under her name, and the one the directory could not answer")
	assert.Equal(t, "ok", signIns[0].Result)
	assert.Equal(t, "ldap", signIns[0].Detail)
	assert.Contains(t, signIns[1].Result, "connection refused")
	assert.Len(t, audit.find("request.refused", "alice"), 2, "her wrong and her empty password")
	all := logs.String()
	for _, e := range audit.entries {
		all += e.User + e.Result + e.Detail
	}
	for _, pw := range []string{"alice-secret-1", "not-her-password", "svc-secret-7", "dave-secret-4"} {
		assert.NotContains(t, all, pw, "no password in the audit trail or the log")
	}
}
