package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The console signs in with an API token once and then carries a session
// cookie. A session is a random id the broker keeps in memory (a restart
// signs everyone out), bound to the token's hash: a token removed or
// changed on reload ends its sessions, and its role is read again on
// every request. Every request that changes something with a session
// must carry the session's CSRF token in the X-CSRF-Token header, which
// only the console's own pages can read (GET /ui/session, same origin).

// SessionCookie is the console's cookie.
const SessionCookie = "hl7broker_session"

// sessionTTL is how long a session lasts from sign-in: a working shift.
const sessionTTL = 8 * time.Hour

type session struct {
	tokenHash [32]byte
	csrf      string
	expires   time.Time
}

// Sessions are the console's signed-in browsers.
type Sessions struct {
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

func (s *Sessions) create(hash [32]byte) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]*session{}
	}
	now := s.clock()
	for id, old := range s.byID { // forget the expired
		if now.After(old.expires) {
			delete(s.byID, id)
		}
	}
	id = randomID()
	sess = &session{tokenHash: hash, csrf: randomID(), expires: now.Add(sessionTTL)}
	s.byID[id] = sess
	return id, sess
}

func (s *Sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok || s.clock().After(sess.expires) {
		delete(s.byID, id)
		return nil, false
	}
	return sess, true
}

func (s *Sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// fromCookie returns the request's session and its token, if it has a
// live one whose token still exists.
func (a *API) fromCookie(r *http.Request) (*session, Token, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, Token{}, false
	}
	sess, ok := a.Sessions.get(c.Value)
	if !ok {
		return nil, Token{}, false
	}
	tok, ok := a.Tokens.byHash(sess.tokenHash)
	if !ok {
		a.Sessions.remove(c.Value)
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
}

func (a *API) info(tok Token, sess *session) sessionInfo {
	return sessionInfo{User: tok.Name, Role: tok.Role, CSRF: sess.csrf, SearchKeys: a.SearchKeys, History: a.Ops != nil}
}

// login takes {"token": "..."} and sets the session cookie.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, ok := a.Tokens.lookup("Bearer " + req.Token)
	if !ok {
		a.refused(w, r, "", http.StatusUnauthorized, "401 sign-in with no valid token", "console sign-in", "this is not a valid API token")
		return
	}
	id, sess := a.Sessions.create(sha256.Sum256([]byte(req.Token)))
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: overTLS(r),
		SameSite: http.SameSiteStrictMode, Expires: sess.expires})
	a.record(r, tok.Name, "console.sign_in", "ok", nil, "")
	writeJSON(w, http.StatusOK, a.info(tok, sess))
}

// logout ends the session (CSRF-checked like every change).
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	sess, tok, ok := a.fromCookie(r)
	if ok && !csrfOK(r, sess) {
		writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token")
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.Sessions.remove(c.Value)
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
