package admin

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// The console signs in with an API token once and then carries a session
// cookie. A session is a random id, bound to the token's hash: a token
// removed or changed on reload ends its sessions, and its role is read
// again on every request. Every request that changes something with a
// session must carry the session's CSRF token in the X-CSRF-Token header,
// which only the console's own pages can read (GET /ui/session, same
// origin).
//
// With a SessionStore (the broker gives HL7_STATE), sessions are kept in
// the store too: they survive a restart and are seen by every broker of
// a cluster, and signing out ends the session on every one of them. The
// store holds a hash of the session id, never the id.

// SessionCookie is the console's cookie.
const SessionCookie = "hl7broker_session"

// Default session limits: a working shift, and an hour without a request.
const (
	DefaultSessionMax  = 8 * time.Hour
	DefaultSessionIdle = time.Hour
)

// sessionRecheck is how long a broker trusts a session it holds in memory
// before asking the store again (a sign-out on another broker).
const sessionRecheck = 5 * time.Second

type session struct {
	tokenHash [32]byte // a token's session
	person    Person   // a person's (person.Via set)
	csrf      string
	created   time.Time
	lastSeen  time.Time // the last request (in the store: to the minute)
	saved     time.Time // lastSeen as the store has it
	checked   time.Time // when the store last said it exists
}

// SessionStore keeps sessions where every broker of a cluster sees them,
// across restarts. Keys are hashes of session ids.
type SessionStore interface {
	PutSession(ctx context.Context, key string, s wire.Session) error
	GetSession(ctx context.Context, key string) (wire.Session, bool, error)
	DeleteSession(ctx context.Context, key string) error
	// Sessions lists every session kept, for removing the expired.
	Sessions(ctx context.Context) (map[string]wire.Session, error)
}

// Sessions are the console's signed-in browsers.
type Sessions struct {
	Store SessionStore  // nil: in memory only (a restart signs everyone out)
	Max   time.Duration // from sign-in; 0: DefaultSessionMax
	Idle  time.Duration // without a request; 0: DefaultSessionIdle

	mu   sync.Mutex
	byID map[string]*session
	now  func() time.Time
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Sessions) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Sessions) limits() (max, idle time.Duration) {
	return cmp.Or(s.Max, DefaultSessionMax), cmp.Or(s.Idle, DefaultSessionIdle)
}

// storeKey is the store's key of a session id: its hash.
func storeKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// expired: past the absolute limit or idle too long.
func (s *Sessions) expired(sess *session, now time.Time) bool {
	max, idle := s.limits()
	return now.After(sess.created.Add(max)) || now.After(sess.lastSeen.Add(idle))
}

// expires is when the session ends at the latest (the cookie's expiry).
func (s *Sessions) expires(sess *session) time.Time {
	max, _ := s.limits()
	return sess.created.Add(max)
}

// create starts a session of a token (hash) or of a person (p.Via set).
func (s *Sessions) create(ctx context.Context, hash [32]byte, p Person) (id string, sess *session, err error) {
	now := s.clock()
	id = randomID()
	sess = &session{tokenHash: hash, person: p, csrf: randomID(), created: now, lastSeen: now, saved: now, checked: now}
	if s.Store != nil {
		if err := s.Store.PutSession(ctx, storeKey(id), sess.record(now)); err != nil {
			return "", nil, err
		}
		s.forgetExpired(ctx, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]*session{}
	}
	for id, old := range s.byID { // forget the expired
		if s.expired(old, now) {
			delete(s.byID, id)
		}
	}
	s.byID[id] = sess
	return id, sess, nil
}

// forgetExpired deletes the store's expired sessions (at each sign-in:
// they are few, a person's each).
func (s *Sessions) forgetExpired(ctx context.Context, now time.Time) {
	all, err := s.Store.Sessions(ctx)
	if err != nil {
		return
	}
	for key, rec := range all {
		if s.expired(&session{created: rec.Created, lastSeen: rec.LastSeen}, now) {
			_ = s.Store.DeleteSession(ctx, key)
		}
	}
}

func (s *Sessions) get(ctx context.Context, id string) (*session, bool) {
	now := s.clock()
	s.mu.Lock()
	sess, ok := s.byID[id]
	s.mu.Unlock()
	if s.Store != nil && (!ok || now.Sub(sess.checked) > sessionRecheck) {
		rec, found, err := s.Store.GetSession(ctx, storeKey(id))
		switch {
		case err != nil && ok: // the store does not answer: trust memory a while longer
		case err != nil || !found:
			s.forget(id)
			return nil, false
		default:
			var hash [32]byte
			if b, err := hex.DecodeString(rec.TokenHash); err == nil && len(b) == len(hash) {
				copy(hash[:], b)
			}
			fresh := &session{tokenHash: hash, person: Person{Name: rec.User, Via: rec.Via, Groups: rec.Groups},
				csrf: rec.CSRF, created: rec.Created, lastSeen: rec.LastSeen, saved: rec.LastSeen, checked: now}
			if ok && sess.lastSeen.After(fresh.lastSeen) {
				fresh.lastSeen = sess.lastSeen
			}
			sess, ok = fresh, true
			s.mu.Lock()
			if s.byID == nil {
				s.byID = map[string]*session{}
			}
			s.byID[id] = sess
			s.mu.Unlock()
		}
	}
	if !ok {
		return nil, false
	}
	if s.expired(sess, now) {
		s.remove(ctx, id)
		return nil, false
	}
	s.mu.Lock()
	sess.lastSeen = now
	save := s.Store != nil && now.Sub(sess.saved) > time.Minute
	if save {
		sess.saved = now
	}
	rec := sess.record(now)
	s.mu.Unlock()
	if save { // the idle clock, kept to the minute where every broker sees it
		_ = s.Store.PutSession(ctx, storeKey(id), rec)
	}
	return sess, true
}

// record is the session as the store keeps it, last seen at lastSeen.
func (sess *session) record(lastSeen time.Time) wire.Session {
	rec := wire.Session{CSRF: sess.csrf, Created: sess.created, LastSeen: lastSeen}
	if sess.person.Via != "" {
		rec.User, rec.Via, rec.Groups = sess.person.Name, sess.person.Via, sess.person.Groups
	} else {
		rec.TokenHash = hex.EncodeToString(sess.tokenHash[:])
	}
	return rec
}

func (s *Sessions) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// remove ends a session here and in the store (every broker).
func (s *Sessions) remove(ctx context.Context, id string) {
	s.forget(id)
	if s.Store != nil {
		_ = s.Store.DeleteSession(ctx, storeKey(id))
	}
}

// fromCookie returns the request's session and who it is, if it has a
// live one whose token still exists, or whose person's groups still map
// to a role.
func (a *API) fromCookie(r *http.Request) (*session, Token, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, Token{}, false
	}
	sess, ok := a.Sessions.get(r.Context(), c.Value)
	if !ok {
		return nil, Token{}, false
	}
	var tok Token
	if sess.person.Via != "" {
		tok, ok = a.People.token(sess.person)
	} else {
		tok, ok = a.Tokens.byHash(sess.tokenHash)
	}
	if !ok {
		a.Sessions.remove(r.Context(), c.Value)
		return nil, Token{}, false
	}
	return sess, tok, true
}

// csrfOK: a request with a session that changes something carries the
// session's CSRF token.
func csrfOK(r *http.Request, sess *session) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(sess.csrf)) == 1
}

// sessionInfo is GET /ui/session and what POST /ui/login answers.
type sessionInfo struct {
	User       string   `json:"user"`
	Role       string   `json:"role"`
	CSRF       string   `json:"csrf"`
	SearchKeys []string `json:"search_keys"`
	History    bool     `json:"history"`
	// ContentSearch: the messages page offers a search by text.
	ContentSearch bool `json:"content_search"`
}

func (a *API) info(tok Token, sess *session) sessionInfo {
	keys := a.SearchKeys
	if keys == nil {
		keys = []string{} // the console lists them: never null
	}
	return sessionInfo{User: tok.Name, Role: tok.Role, CSRF: sess.csrf, SearchKeys: keys, History: a.Ops != nil, ContentSearch: a.ContentSearch}
}

// login takes {"token": "..."}, or {"username", "password"} for the
// directory (admin.ldap), and sets the session cookie.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Token == "" && req.Username != "" {
		a.ldapLogin(w, r, req.Username, req.Password)
		return
	}
	tok, ok := a.Tokens.lookup("Bearer " + req.Token)
	if !ok {
		a.refused(w, r, "", http.StatusUnauthorized, "401 sign-in with no valid token", "console sign-in", "this is not a valid API token")
		return
	}
	sess, ok := a.startSession(w, r, tok, sha256.Sum256([]byte(req.Token)), Person{})
	if ok {
		writeJSON(w, http.StatusOK, a.info(tok, sess))
	}
}

// startSession starts the session of a token (hash) or person (p.Via
// set) signed in as tok, sets its cookie and audits the sign-in; it
// answers 503 itself when the store cannot keep the session.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, tok Token, hash [32]byte, p Person) (*session, bool) {
	id, sess, err := a.Sessions.create(r.Context(), hash, p)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the session could not be kept in the store; try again: "+err.Error())
		return nil, false
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: overTLS(r),
		SameSite: http.SameSiteStrictMode, Expires: a.Sessions.expires(sess)})
	a.record(r, tok.Name, "console.sign_in", "ok", nil, cmp.Or(p.Via, "token"))
	return sess, true
}

// logout ends the session (CSRF-checked like every change).
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	sess, tok, ok := a.fromCookie(r)
	if ok && !csrfOK(r, sess) {
		writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token")
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.Sessions.remove(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: overTLS(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	if ok {
		a.record(r, tok.Name, "console.sign_out", "ok", nil, "")
	}
	w.WriteHeader(http.StatusNoContent)
}

// sessionNow answers who is signed in, with the CSRF token.
func (a *API) sessionNow(w http.ResponseWriter, r *http.Request) {
	sess, tok, ok := a.fromCookie(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, a.info(tok, sess))
}

// overTLS says whether the browser reached the console over HTTPS: served
// with admin.tls, or through a TLS proxy that says so
// (X-Forwarded-Proto: https). Then the session cookie is Secure, and a
// browser never sends it in clear.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
