package admin

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/wire"
)

// API is /api/v1: what the CLI and the console use. Every request needs a
// bearer token; every view of content and every change is audited.
type API struct {
	Tokens *Tokens
	// Ops are the operations on stored messages. Its Index is nil when
	// history.enabled is false: the message, dead-letter and audit
	// endpoints then answer 503; pause and resume still work.
	Ops *history.Ops
	// Status computes GET /api/v1/status.
	Status func(ctx context.Context) Status
	// Audit appends an entry to the audit trail. Content is shown only
	// once its view is stored (no audit entry, no content: 503).
	Audit func(ctx context.Context, e wire.AuditEntry) error
	// AuditReady, if set, says whether an entry can be stored now (e.g.
	// the audit's share of the disk is left); a change (replay, purge,
	// pause) is refused with 503 when it cannot.
	AuditReady func(ctx context.Context) error
	// SearchKeys are the configured search keys' names.
	SearchKeys []string
	// ContentSearch: searches by text are on (history.content_search).
	ContentSearch bool
	// MaxBulk bounds how many messages one replay or purge by filter takes.
	MaxBulk int
	// Alerts are the alert rules' state and silences; nil: none.
	Alerts Alerts
	// Sessions are the console's; a request without a bearer token may
	// carry a session cookie instead.
	Sessions Sessions
	// People are the ways people sign in as themselves (OIDC, LDAP).
	People *Ways
	// Searches keeps each person's saved searches; nil: none.
	Searches SearchStore

	refusals refusals
}

// user is who made a request, once authenticated.
type user struct{ Token }

// registrar takes the API's routes: an *http.ServeMux, or a test that
// lists them.
type registrar interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

func (a *API) routes(mux registrar) {
	h := func(pattern, role string, fn func(http.ResponseWriter, *http.Request, user)) {
		mux.Handle(pattern, a.authorized(role, fn))
	}
	h("GET /api/v1/status", RoleViewer, a.status)
	h("GET /api/v1/messages", RoleViewer, a.searchMessages)
	h("GET /api/v1/messages/{id}", RoleOperator, a.showMessage)
	h("GET /api/v1/refused", RoleViewer, a.listRefused)
	h("POST /api/v1/reconcile", RoleViewer, a.reconcile)
	h("POST /api/v1/messages/replay", RoleOperator, a.replayMessages)
	h("GET /api/v1/dlq", RoleViewer, a.listDLQ)
	h("GET /api/v1/dlq/{id}", RoleOperator, a.showDLQ)
	h("POST /api/v1/dlq/replay", RoleOperator, a.replayDLQ)
	h("POST /api/v1/dlq/purge", RoleAdmin, a.purgeDLQ)
	h("GET /api/v1/destinations", RoleViewer, a.destinations)
	h("POST /api/v1/destinations/{name}/pause", RoleOperator, a.pause(true))
	h("POST /api/v1/destinations/{name}/resume", RoleOperator, a.pause(false))
	h("GET /api/v1/audit", RoleOperator, a.audit)
	h("GET /api/v1/alerts", RoleViewer, a.listAlerts)
	h("POST /api/v1/alerts/{rule}/silence", RoleOperator, a.silence(false))
	h("DELETE /api/v1/alerts/{rule}/silence", RoleOperator, a.silence(true))
	h("GET /api/v1/searches", RoleViewer, a.listSearches)
	h("PUT /api/v1/searches/{name}", RoleViewer, a.saveSearch)
	h("DELETE /api/v1/searches/{name}", RoleViewer, a.deleteSearch)
	mux.HandleFunc("POST /ui/login", a.login)
	mux.HandleFunc("POST /ui/logout", a.logout)
	mux.HandleFunc("GET /ui/session", a.sessionNow)
	mux.HandleFunc("GET /ui/sign-in", a.methods)
	mux.HandleFunc("GET /ui/oidc/login", a.oidcLogin)
	mux.HandleFunc("GET /ui/oidc/callback", a.oidcCallback)
	mux.Handle("GET /ui/", console())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.Handle("/api/", a.authorized(RoleViewer, func(w http.ResponseWriter, r *http.Request, _ user) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	}))
}

// authorized checks the bearer token and the role, then runs fn; a
// refusal is audited and answered 401 (no valid token) or 403 (role).
func (a *API) authorized(role string, fn func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := a.Tokens.lookup(r.Header.Get("Authorization"))
		if !ok && r.Header.Get("Authorization") == "" {
			var sess *session
			if sess, tok, ok = a.fromCookie(r); ok && !csrfOK(r, sess) {
				a.refused(w, r, tok.Name, http.StatusForbidden, "403 no CSRF token", r.Method+" "+r.URL.Path,
					"missing or wrong X-CSRF-Token (the console sends it with every change)")
				return
			}
		}
		if !ok {
			a.refused(w, r, "", http.StatusUnauthorized, "401 no valid token", r.Method+" "+r.URL.Path,
				"a valid API token is needed: Authorization: Bearer <token>")
			return
		}
		if !allows(tok.Role, role) {
			a.refused(w, r, tok.Name, http.StatusForbidden, "403 role "+tok.Role, r.Method+" "+r.URL.Path,
				fmt.Sprintf("role %s may not do this (it needs %s)", tok.Role, role))
			return
		}
		fn(w, r, user{tok})
	})
}

// record appends to the audit trail. A failure is logged by Audit's
// owner; the caller decides whether the request may go on without its
// entry (content may not: see mustRecord).
func (a *API) record(r *http.Request, who, action, result string, ids []string, detail string) error {
	if ids == nil {
		ids = []string{}
	}
	keys, found := r.Context().Value(auditKeysKey{}).(map[string][]string)
	if !found {
		keys = a.keysOf(r.Context(), action, ids)
	}
	return a.append(r, wire.AuditEntry{At: time.Now().UTC(), User: who, Action: action, Result: result,
		IDs: ids, Detail: detail, Remote: r.RemoteAddr, Keys: keys})
}

// auditKeysKey holds, in a request's context, the search-key values its
// audit entry carries, found before the action (a dead letter replayed
// or purged leaves the index with it).
type auditKeysKey struct{}

// withAuditKeys is r with the keys of the messages action is about,
// found now.
func (a *API) withAuditKeys(r *http.Request, action string, ids []string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), auditKeysKey{}, a.keysOf(r.Context(), action, ids)))
}

// keysOf are the search-key values (MRN, name…) of the messages an
// action on ids is about: message ids for message.*, dead letters' for
// dlq.*; nil for other actions or without the index. They go in the
// audit entry, so that the trail answers who viewed or replayed one
// patient's messages.
func (a *API) keysOf(ctx context.Context, action string, ids []string) map[string][]string {
	if a.Ops == nil || a.Ops.Index == nil || len(ids) == 0 {
		return nil
	}
	var nums []uint64
	for _, s := range ids {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil {
			nums = append(nums, id)
		}
	}
	var keys map[string][]string
	var err error
	switch {
	case strings.HasPrefix(action, "message."):
		keys, err = a.Ops.Index.KeysOf(ctx, nums, nil)
	case strings.HasPrefix(action, "dlq."):
		keys, err = a.Ops.Index.KeysOf(ctx, nil, nums)
	}
	if err != nil {
		return nil // the entry keeps its ids
	}
	return keys
}

// append stores e (r, if any, is the request it is about).
func (a *API) append(r *http.Request, e wire.AuditEntry) error {
	if a.Audit == nil {
		return nil
	}
	ctx := context.Background()
	if r != nil {
		ctx = context.WithoutCancel(r.Context())
	}
	return a.Audit(ctx, e)
}

// mustRecord stores the entry for a view (of content, a patient's search,
// the trail itself) before it is answered. When it cannot be stored the
// view is refused: 503 with the reason, and nothing of the content.
func (a *API) mustRecord(w http.ResponseWriter, r *http.Request, who, action string, ids []string, detail string) bool {
	if err := a.record(r, who, action, "ok", ids, detail); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the audit trail could not record this view, so it is not shown (no audit entry, no content): "+err.Error())
		return false
	}
	return true
}

// auditReady refuses a change (503) when its audit entry could not be
// stored.
func (a *API) auditReady(w http.ResponseWriter, r *http.Request) bool {
	if a.AuditReady == nil {
		return true
	}
	if err := a.AuditReady(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the audit trail cannot record changes now, so none is made: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": why}.
func writeError(w http.ResponseWriter, code int, why string) {
	writeJSON(w, code, map[string]string{"error": why})
}

// errorCode maps an operation's error to a status.
func errorCode(err error) int {
	switch {
	case errors.Is(err, history.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, history.ErrBadCursor), errors.Is(err, history.ErrUnknownDestination), errors.As(err, new(*badRequest)),
		errors.As(err, new(*history.QueryError)):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.As(err, new(*outOfScope)):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// outOfScope: the token is limited to some listeners, sources or
// destinations (admin.tokens' sources and destinations), and this is not
// one of them.
type outOfScope struct{ why string }

func (e *outOfScope) Error() string { return e.why }

func scopeError(format string, args ...any) error {
	return &outOfScope{"your token may not see or act on " + fmt.Sprintf(format, args...) + " (admin.tokens: sources, destinations)"}
}

// scoped limits f to what u may see, or refuses a filter naming what u
// may not.
func scoped(u user, f history.Filter) (history.Filter, error) {
	if f.Listener != "" && !u.MaySee(f.Listener) {
		return f, scopeError("listener %s", f.Listener)
	}
	if f.Destination != "" && !u.MayUse(f.Destination) {
		return f, scopeError("destination %s", f.Destination)
	}
	f.Listeners = u.Sources
	return f, nil
}

// messagesInScope refuses ids when one of the messages came from a
// listener u may not see.
func (a *API) messagesInScope(ctx context.Context, u user, ids IDs) error {
	if u.Sources == nil {
		return nil
	}
	for _, id := range ids {
		d, err := a.Ops.Index.Message(ctx, id)
		if err == nil && !u.MaySee(d.Listener) {
			return scopeError("message %d (from %s)", id, d.Listener)
		}
	}
	return nil
}

// lettersInScope refuses ids when a dead letter is of a destination, or
// of a message from a listener, that u may not see.
func (a *API) lettersInScope(ctx context.Context, u user, ids IDs) error {
	if u.Sources == nil && u.Destinations == nil {
		return nil
	}
	for _, id := range ids {
		d, err := a.Ops.Index.DeadLetterByID(ctx, id)
		if err != nil {
			continue // the operation says what became of it
		}
		if !u.MayUse(d.Destination) {
			return scopeError("dead letter %d (for %s)", id, d.Destination)
		}
		if mid, err := strconv.ParseUint(d.MessageID, 10, 64); err == nil {
			if err := a.messagesInScope(ctx, u, IDs{mid}); err != nil {
				return scopeError("dead letter %d (its message came from a listener or source not yours)", id)
			}
		}
	}
	return nil
}

type badRequest struct{ why string }

func (e *badRequest) Error() string { return e.why }

func bad(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

func (a *API) noHistory(w http.ResponseWriter) bool {
	if a.Ops == nil || a.Ops.Index == nil {
		writeError(w, http.StatusServiceUnavailable, "history is off (history.enabled: false): no message history, dead letters or audit to show")
		return true
	}
	return false
}

func (a *API) status(w http.ResponseWriter, r *http.Request, _ user) {
	writeJSON(w, http.StatusOK, a.Status(r.Context()))
}

// parseTime takes RFC 3339, or a date (2026-12-01, midnight UTC).
func parseTime(key, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, bad("%s: %q is not a time (RFC 3339, such as 2026-12-01T08:00:00Z, or a date)", key, s)
}

// filterFrom reads a message filter from query-style values.
func (a *API) filterFrom(get func(string) string, keys map[string]string) (history.Filter, error) {
	f := history.Filter{ControlID: get("control_id"), Type: get("type"), Event: get("event"), Listener: get("listener"),
		Status: get("status"), Destination: get("destination"), Text: get("text"), Cursor: get("cursor"), Keys: map[string]string{}}
	for name, v := range keys {
		if !slices.Contains(a.SearchKeys, name) {
			return f, bad("no search key named %q (history.search_keys has: %s)", name, strings.Join(a.SearchKeys, ", "))
		}
		if v == "*" || strings.Count(v, "*") > 1 || strings.Contains(strings.TrimSuffix(v, "*"), "*") {
			return f, bad("key.%s: a * may only end a value, after at least one character (ngu*)", name)
		}
		f.Keys[name] = v
	}
	if f.Status != "" && !slices.Contains(history.Statuses, f.Status) {
		return f, bad("status %q is not one of %s", f.Status, strings.Join(history.Statuses, ", "))
	}
	var err error
	if f.From, err = parseTime("from", get("from")); err != nil {
		return f, err
	}
	if f.To, err = parseTime("to", get("to")); err != nil {
		return f, err
	}
	if l := get("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 {
			return f, bad("limit: %q is not a positive number", l)
		}
	}
	return f, nil
}

func (a *API) searchMessages(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	q := r.URL.Query()
	keys := map[string]string{}
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, "key."); ok && len(v) > 0 {
			keys[name] = v[0]
		}
	}
	f, err := a.filterFrom(q.Get, keys)
	if err == nil {
		f, err = scoped(u, f)
	}
	if err == nil {
		var page history.Page
		if page, err = a.Ops.Index.Search(r.Context(), f); err == nil {
			// Every search is recorded with its criteria and what it found:
			// results show patients' key values (MRN, name).
			if !a.mustRecord(w, r, u.Name, "message.search", page.IDs(), searchDetail(q)) {
				return
			}
			writeJSON(w, http.StatusOK, page)
			return
		}
	}
	writeError(w, errorCode(err), err.Error())
}

// searchDetail is a search's parameters, in a stable order, for its
// audit entry (the key values are what "who looked for this patient"
// finds).
func searchDetail(q url.Values) string {
	q = maps.Clone(q)
	q.Del("cursor")
	return q.Encode()
}

// listRefused lists the messages ingest did not store (AR/AE to their
// sender): what could be read of their header and why, no content.
func (a *API) listRefused(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	q := r.URL.Query()
	f := history.RefusedFilter{Listener: q.Get("listener"), ControlID: q.Get("control_id"), Cursor: q.Get("cursor"), Listeners: u.Sources}
	var err error
	if f.Listener != "" && !u.MaySee(f.Listener) {
		err = scopeError("listener %s", f.Listener)
	}
	if err == nil {
		if f.From, err = parseTime("from", q.Get("from")); err == nil {
			f.To, err = parseTime("to", q.Get("to"))
		}
	}
	if l := q.Get("limit"); l != "" && err == nil {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 {
			err = bad("limit: %q is not a positive number", l)
		}
	}
	var p history.RefusedPage
	if err == nil {
		p, err = a.Ops.Index.RefusedMessages(r.Context(), f)
	}
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func pathID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, bad("%q is not a message id", r.PathValue("id"))
	}
	return id, nil
}

func (a *API) showMessage(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	id, err := pathID(r)
	if err == nil {
		var v history.View
		if v, err = a.Ops.Show(r.Context(), id); err == nil && !u.MaySee(v.Listener) {
			err = scopeError("messages from %s", v.Listener)
		}
		if err == nil {
			if a.mustRecord(w, r, u.Name, "message.view", []string{r.PathValue("id")}, "") {
				writeJSON(w, http.StatusOK, v)
			}
			return
		}
	}
	a.record(r, u.Name, "message.view", err.Error(), []string{r.PathValue("id")}, "")
	writeError(w, errorCode(err), err.Error())
}

// IDs are message or dead-letter ids, given as numbers or strings.
type IDs []uint64

func (ids *IDs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New("ids: a list of ids")
	}
	for _, r := range raw {
		s := strings.Trim(string(r), `"`)
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("ids: %s is not an id", r)
		}
		*ids = append(*ids, id)
	}
	return nil
}

func (ids IDs) strings() []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatUint(id, 10)
	}
	return out
}

// replayRequest is POST /api/v1/messages/replay's body.
type replayRequest struct {
	IDs         IDs               `json:"ids"`
	Filter      map[string]string `json:"filter"` // the names of GET /api/v1/messages' parameters
	Destination string            `json:"destination"`
	Limit       int               `json:"limit"`
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad("body: %s", err.Error())
	}
	return nil
}

func (a *API) bulkLimit(n int) int {
	m := a.MaxBulk
	if m <= 0 {
		m = 10000
	}
	if n > 0 {
		return min(n, m)
	}
	return m
}

func (a *API) replayMessages(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) || !a.auditReady(w, r) {
		return
	}
	var req replayRequest
	out, ids, err := history.Outcome{}, IDs(nil), decode(r, &req)
	if err == nil {
		ids, err = a.selectIDs(r.Context(), u, req.IDs, req.Filter, req.Limit)
	}
	if err == nil && req.Destination != "" && !u.MayUse(req.Destination) {
		err = scopeError("destination %s", req.Destination)
	}
	if err == nil {
		out, err = a.Ops.ReplayMessages(r.Context(), ids, req.Destination, u.Name)
	}
	a.finish(w, r, u, "message.replay", ids, req.Destination, out, err)
}

// selectIDs is ids, or the messages a filter selects.
func (a *API) selectIDs(ctx context.Context, u user, ids IDs, filter map[string]string, n int) (IDs, error) {
	if len(ids) > 0 || filter == nil {
		if len(ids) == 0 {
			return nil, bad(`give "ids" or a "filter"`)
		}
		return ids, a.messagesInScope(ctx, u, ids)
	}
	keys := map[string]string{}
	for k, v := range filter {
		if name, ok := strings.CutPrefix(k, "key."); ok {
			keys[name] = v
		}
	}
	f, err := a.filterFrom(func(k string) string { return filter[k] }, keys)
	if err == nil {
		f, err = scoped(u, f)
	}
	if err != nil {
		return nil, err
	}
	return a.Ops.MessageIDs(ctx, f, a.bulkLimit(n))
}

// finish audits a bulk operation and answers its outcome.
func (a *API) finish(w http.ResponseWriter, r *http.Request, u user, action string, ids IDs, detail string, out history.Outcome, err error) {
	if err != nil {
		a.record(r, u.Name, action, err.Error(), ids.strings(), detail)
		writeError(w, errorCode(err), err.Error())
		return
	}
	result := "ok"
	if out.Failed > 0 {
		result = fmt.Sprintf("%d of %d failed", out.Failed, out.Failed+out.Done)
	}
	a.record(r, u.Name, action, result, ids.strings(), detail)
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listDLQ(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	q := r.URL.Query()
	f := history.DLQFilter{Destination: q.Get("destination"), Cursor: q.Get("cursor"), Destinations: u.Destinations, Listeners: u.Sources}
	if f.Destination != "" && !u.MayUse(f.Destination) {
		writeError(w, http.StatusForbidden, scopeError("destination %s", f.Destination).Error())
		return
	}
	if l := q.Get("limit"); l != "" {
		f.Limit, _ = strconv.Atoi(l)
	}
	p, err := a.Ops.Index.DeadLetters(r.Context(), f)
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// dlqView is one dead letter with its content.
type dlqView struct {
	history.DeadLetter
	Message string `json:"message"`
}

func (a *API) showDLQ(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	id, err := pathID(r)
	if err == nil {
		var d history.DeadLetter
		if d, err = a.Ops.Index.DeadLetterByID(r.Context(), id); err == nil {
			err = a.lettersInScope(r.Context(), u, IDs{id})
		}
		if err == nil {
			var data []byte
			if data, err = a.Ops.DeadLetterContent(r.Context(), id); err == nil {
				if a.mustRecord(w, r, u.Name, "dlq.view", []string{d.ID}, d.Destination) {
					writeJSON(w, http.StatusOK, dlqView{DeadLetter: d, Message: string(data)})
				}
				return
			}
		}
	}
	a.record(r, u.Name, "dlq.view", err.Error(), []string{r.PathValue("id")}, "")
	writeError(w, errorCode(err), err.Error())
}

// dlqRequest is the body of POST /api/v1/dlq/replay and /purge.
type dlqRequest struct {
	IDs         IDs    `json:"ids"`
	All         bool   `json:"all"`
	Destination string `json:"destination"` // with all: that destination's letters ("" every one)
	To          string `json:"to"`          // replay: another destination
	Limit       int    `json:"limit"`
}

func (a *API) dlqIDs(ctx context.Context, req dlqRequest) (IDs, error) {
	switch {
	case len(req.IDs) > 0 && req.All:
		return nil, bad(`give "ids" or "all", not both`)
	case len(req.IDs) > 0:
		return req.IDs, nil
	case req.All:
		ids, err := a.Ops.DeadLetterIDs(ctx, req.Destination, a.bulkLimit(req.Limit))
		return IDs(ids), err
	}
	return nil, bad(`give "ids", or "all": true (with "destination" to take one destination's)`)
}

func (a *API) replayDLQ(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) || !a.auditReady(w, r) {
		return
	}
	var req dlqRequest
	out, ids, err := history.Outcome{}, IDs(nil), decode(r, &req)
	if err == nil {
		ids, err = a.dlqIDs(r.Context(), req)
	}
	if err == nil && req.To != "" && !u.MayUse(req.To) {
		err = scopeError("destination %s", req.To)
	}
	if err == nil {
		err = a.lettersInScope(r.Context(), u, ids)
	}
	if err == nil {
		r = a.withAuditKeys(r, "dlq.replay", ids.strings())
		out, err = a.Ops.ReplayDeadLetters(r.Context(), ids, req.To, u.Name)
	}
	a.finish(w, r, u, "dlq.replay", ids, strings.Trim(req.Destination+" -> "+req.To, " ->"), out, err)
}

func (a *API) purgeDLQ(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) || !a.auditReady(w, r) {
		return
	}
	var req dlqRequest
	out, ids, err := history.Outcome{}, IDs(nil), decode(r, &req)
	if err == nil && req.To != "" {
		err = bad(`"to" is for replay`)
	}
	if err == nil {
		ids, err = a.dlqIDs(r.Context(), req)
	}
	if err == nil {
		err = a.lettersInScope(r.Context(), u, ids)
	}
	if err == nil {
		r = a.withAuditKeys(r, "dlq.purge", ids.strings())
		out = a.Ops.PurgeDeadLetters(r.Context(), ids, u.Name)
	}
	a.finish(w, r, u, "dlq.purge", ids, req.Destination, out, err)
}

func (a *API) destinations(w http.ResponseWriter, r *http.Request, _ user) {
	writeJSON(w, http.StatusOK, map[string]any{"items": a.Status(r.Context()).Destinations})
}

func (a *API) pause(paused bool) func(http.ResponseWriter, *http.Request, user) {
	action := map[bool]string{true: "destination.pause", false: "destination.resume"}[paused]
	return func(w http.ResponseWriter, r *http.Request, u user) {
		if a.Ops == nil {
			writeError(w, http.StatusServiceUnavailable, "pause and resume are not available on this server")
			return
		}
		if !a.auditReady(w, r) {
			return
		}
		name := r.PathValue("name")
		err := error(nil)
		if !u.MayUse(name) {
			err = scopeError("destination %s", name)
		} else {
			err = a.Ops.SetPaused(r.Context(), name, paused, u.Name)
		}
		if err != nil {
			a.record(r, u.Name, action, err.Error(), nil, name)
			writeError(w, errorCode(err), err.Error())
			return
		}
		a.record(r, u.Name, action, "ok", nil, name)
		writeJSON(w, http.StatusOK, map[string]any{"destination": name, "paused": paused})
	}
}

func (a *API) audit(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	q := r.URL.Query()
	f := history.AuditFilter{User: q.Get("user"), Action: q.Get("action"), Cursor: q.Get("cursor"), Keys: map[string]string{}}
	var err error
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, "key."); ok && len(v) > 0 {
			if !slices.Contains(a.SearchKeys, name) {
				err = bad("no search key named %q (history.search_keys has: %s)", name, strings.Join(a.SearchKeys, ", "))
			}
			f.Keys[name] = v[0]
		}
	}
	if err == nil {
		if f.From, err = parseTime("from", q.Get("from")); err == nil {
			f.To, err = parseTime("to", q.Get("to"))
		}
	}
	if l := q.Get("limit"); l != "" {
		f.Limit, _ = strconv.Atoi(l)
	}
	csvOut := q.Get("format") == "csv"
	if f := q.Get("format"); err == nil && f != "" && f != "csv" && f != "json" {
		err = bad("format %q: json or csv", f)
	}
	var p history.AuditPage
	if err == nil && !csvOut {
		p, err = a.Ops.Index.Audit(r.Context(), f)
	}
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	if !a.mustRecord(w, r, u.Name, "audit.read", []string{}, searchDetail(q)) {
		return
	}
	if csvOut {
		a.auditCSV(w, r, f)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// cell is a CSV cell a spreadsheet shows as text: a value from a message
// (a name) that starts like a formula gets a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// maxAuditCSV bounds one CSV export (narrow it by time to get more).
const maxAuditCSV = 100_000

// auditCSV writes every entry f selects (up to maxAuditCSV), newest
// first, as CSV: what an auditor takes away.
func (a *API) auditCSV(w http.ResponseWriter, r *http.Request, f history.AuditFilter) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="hl7broker-audit.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "at", "user", "action", "result", "ids", "keys", "detail", "remote"})
	f.Limit, f.Cursor = 1000, ""
	for n := 0; n < maxAuditCSV; {
		p, err := a.Ops.Index.Audit(r.Context(), f)
		if err != nil {
			_ = cw.Write([]string{"", "", "", "", "export stopped: " + err.Error()})
			break
		}
		for _, it := range p.Items {
			var keys []string
			for _, name := range slices.Sorted(maps.Keys(it.Keys)) {
				keys = append(keys, name+"="+strings.Join(it.Keys[name], "|"))
			}
			_ = cw.Write([]string{it.Seq, it.At.Format(time.RFC3339), cell(it.User), cell(it.Action), cell(it.Result), cell(strings.Join(it.IDs, " ")),
				cell(strings.Join(keys, "; ")), cell(it.Detail), cell(it.Remote)})
		}
		n += len(p.Items)
		if p.NextCursor == "" {
			break
		}
		f.Cursor = p.NextCursor
	}
	cw.Flush()
}
