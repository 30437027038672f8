// Package testoidc runs a real OpenID Connect provider for tests: the
// `op` package of github.com/zitadel/oidc (discovery, authorization with
// PKCE, token endpoint, signed ID tokens, JWKS) on 127.0.0.1, with its
// users, their groups and a plain sign-in form kept in memory. Test
// helper only.
package testoidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a person the provider knows.
type User struct {
	Name     string // preferred_username, and the subject
	Password string
	Email    string
	Groups   []string // the "groups" claim
}

// Provider is a running OpenID provider with one client.
type Provider struct {
	Issuer       string // http://127.0.0.1:PORT
	ClientID     string
	ClientSecret string

	mu          sync.Mutex
	redirects   []string
	users       map[string]User
	requests    map[string]*authRequest
	codes       map[string]string // code -> request id
	tokens      map[string]*authRequest
	tamper      bool
	signIns     int
	key         *rsa.PrivateKey
	keyID       string
	srv         *http.Server
	openid      *op.Provider
	callbackURL func(context.Context, string) string
}

// Start runs a provider whose client (ClientID, ClientSecret) may
// redirect to redirectURL; it stops when the test ends.
func Start(t testing.TB, redirectURL string, users ...User) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String(), ClientID: "hl7broker", ClientSecret: randomString(24),
		redirects: []string{redirectURL}, users: map[string]User{}, requests: map[string]*authRequest{},
		codes: map[string]string{}, tokens: map[string]*authRequest{}, key: key, keyID: randomString(8)}
	for _, u := range users {
		p.users[u.Name] = u
	}
	var crypto [32]byte
	_, _ = rand.Read(crypto[:])
	p.openid, err = op.NewOpenIDProvider(p.Issuer, &op.Config{CryptoKey: crypto, CodeMethodS256: true, AuthMethodPost: true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, "groups"}}, (*storage)(p), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	p.callbackURL = op.AuthCallbackURL(p.openid)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.Handle("/oauth/token", p.tamperable(p.openid))
	mux.Handle("/", p.openid)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// AddRedirect allows another redirect URL (a second broker's).
func (p *Provider) AddRedirect(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirects = append(p.redirects, url)
}

// SetUser adds or changes a user.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Name] = u
}

// TamperIDTokens makes the token endpoint hand out ID tokens whose
// payload was changed after signing (groups added), as an attacker in the
// middle would.
func (p *Provider) TamperIDTokens(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = on
}

// SignIns counts the sign-ins completed on the provider's form.
func (p *Provider) SignIns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signIns
}

// login is the provider's sign-in form (GET) and its answer (POST).
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("id")
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Test provider</title><form method="post" action="/login">
<input type="hidden" name="id" value="%s"><label>User <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label><button id="signin" type="submit">Sign in</button></form>`, html.EscapeString(id))
		return
	}
	p.mu.Lock()
	u, known := p.users[r.FormValue("username")]
	req := p.requests[id]
	ok := known && req != nil && u.Password == r.FormValue("password")
	if ok {
		req.subject, req.done, req.authTime = u.Name, true, time.Now()
		p.signIns++
	}
	p.mu.Unlock()
	if !ok {
		http.Error(w, "wrong user or password", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, p.callbackURL(r.Context(), id), http.StatusFound)
}

// tamperable passes the token endpoint's answer through, changing the ID
// token's payload when TamperIDTokens is on.
func (p *Provider) tamperable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		tamper := p.tamper
		p.mu.Unlock()
		if !tamper {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var answer map[string]any
		if json.Unmarshal(body, &answer) == nil {
			if tok, ok := answer["id_token"].(string); ok {
				answer["id_token"] = tamperedToken(tok)
				body, _ = json.Marshal(answer)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// tamperedToken adds a group to a signed JWT's payload, keeping its
// signature.
func tamperedToken(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tok
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tok
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return tok
	}
	claims["groups"] = []string{"integration-admins"}
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authRequest is one authorization in progress, then its tokens'.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge
	subject                                 string
	done                                    bool
	authTime                                time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// client is the provider's one client: a confidential web application
// using the authorization code flow.
type client struct{ p *Provider }

func (c client) GetID() string { return c.p.ClientID }
func (c client) RedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.redirects)
}
func (c client) PostLogoutRedirectURIs() []string    { return nil }
func (c client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c client) LoginURL(id string) string    { return "/login?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c client) IDTokenLifetime() time.Duration { return 5 * time.Minute }
func (c client) DevMode() bool                  { return true } // http redirect URLs on 127.0.0.1
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }

// storage is the provider's op.Storage, in memory.
type storage Provider

var errNotFound = errors.New("not found")

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	a := &authRequest{id: randomString(16), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, responseType: r.ResponseType, responseMode: r.ResponseMode}
	if r.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	id := randomString(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := r.(*authRequest); ok {
		s.tokens[id] = a
	}
	return id, time.Now().Add(5 * time.Minute), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("no refresh tokens here")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct{ p *Provider }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.p.key }
func (k signingKey) ID() string                                  { return k.p.keyID }

type publicKey struct{ p *Provider }

func (k publicKey) ID() string                         { return k.p.keyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.p.key.PublicKey }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{(*Provider)(s)}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{(*Provider)(s)}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.ClientID {
		return nil, errNotFound
	}
	return client{(*Provider)(s)}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.ClientID || secret != s.ClientSecret {
		return errors.New("wrong client credentials")
	}
	return nil
}

// SetUserinfoFromScopes fills what the ID token says of its subject: the
// name, the email and the groups.
func (s *storage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	s.mu.Lock()
	u, ok := s.users[userID]
	s.mu.Unlock()
	if !ok {
		return errNotFound
	}
	info.Subject = u.Name
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeProfile:
			info.PreferredUsername, info.Name = u.Name, u.Name
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
		case "groups":
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	a := s.tokens[tokenID]
	s.mu.Unlock()
	if a == nil {
		return errNotFound
	}
	return s.SetUserinfoFromScopes(ctx, info, subject, a.clientID, a.scopes)
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("no introspection here")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("no JWT profile here")
}

func (s *storage) Health(context.Context) error { return nil }

// SignIn walks a browserless client through the provider's form: from
// the URL a relying party redirected to (its authorization request),
// signing in as user. It returns the response that ends the walk (the
// relying party's answer to its callback), with the client's cookies.
func SignIn(c *http.Client, start, user, password string) (*http.Response, []byte, error) {
	resp, err := c.Get(start)
	if err != nil {
		return nil, nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := resp.Request.URL
	if !strings.HasSuffix(form.Path, "/login") {
		return resp, page, nil // not at the form: an error on the way
	}
	id := form.Query().Get("id")
	resp, err = c.PostForm(form.Scheme+"://"+form.Host+"/login", url.Values{"id": {id}, "username": {user}, "password": {password}})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, bytes.TrimSpace(out), nil
}
