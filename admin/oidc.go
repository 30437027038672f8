package admin

import (
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDC is single sign-on through an OpenID Connect provider: the
// authorization code flow with PKCE, a state and a nonce, and the ID
// token's signature, issuer, audience and expiry checked (go-oidc). The
// provider is discovered at the first sign-in, and again after a failed
// one, so a provider that is down when the broker starts delays no one.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string            // .../ui/oidc/callback
	GroupsClaim  string            // default "groups"
	UserClaim    string            // default preferred_username, then email, then sub
	Scopes       []string          // besides openid; default profile, email, groups
	Roles        map[string]string // group -> role
	Limits       map[string]Limits // group -> what its people are limited to
	TLS          *tls.Config       // to trust the provider's certificate (nil: the system's)

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// oidcCookie carries a sign-in's state, nonce and PKCE verifier from
// /ui/oidc/login to /ui/oidc/callback (ten minutes, that path only).
const oidcCookie = "hl7broker_oidc"

// oidcTimeout bounds each call to the provider.
const oidcTimeout = 15 * time.Second

func (o *OIDC) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = o.TLS
	return &http.Client{Timeout: oidcTimeout, Transport: tr}
}

// discover finds the provider's endpoints and keys (once it works).
func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.verifier, nil
	}
	// The provider keeps the client for fetching its keys later.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client()), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("the OpenID provider %s could not be reached or read: %w", redactURL(o.Issuer), err)
	}
	o.provider, o.verifier = p, p.Verifier(&oidc.Config{ClientID: o.ClientID})
	return o.provider, o.verifier, nil
}

func (o *OIDC) oauth(p *oidc.Provider) *oauth2.Config {
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email", "groups"}
	}
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
}

// redactURL is u without its query and user info (for messages).
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a URL that does not parse)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// oidcLogin starts a sign-in: GET /ui/oidc/login.
func (a *API) oidcLogin(w http.ResponseWriter, r *http.Request) {
	o := a.People.OIDC()
	if o == nil {
		writeError(w, http.StatusNotFound, "single sign-on is not configured (admin.oidc)")
		return
	}
	p, _, err := o.discover(r.Context())
	if err != nil {
		signInFailed(w, r, err.Error())
		return
	}
	state, nonce, verifier := randomID(), randomID(), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state + "." + nonce + "." + verifier, Path: "/ui/oidc/",
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, o.oauth(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// oidcCallback ends a sign-in: GET /ui/oidc/callback?code=&state=, the
// provider's redirect. The person lands on the console, signed in, or
// on its sign-in page with why not.
func (a *API) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := a.People.OIDC()
	if o == nil {
		writeError(w, http.StatusNotFound, "single sign-on is not configured (admin.oidc)")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/ui/oidc/", HttpOnly: true, Secure: overTLS(r), MaxAge: -1})
	person, err := o.finish(r)
	if err != nil {
		a.refusedSignIn(w, r, person.Name, "oidc", err)
		return
	}
	tok, ok := a.People.token(person)
	if !ok {
		a.refusedSignIn(w, r, person.Name, "oidc", errNoRole)
		return
	}
	if _, ok := a.startSession(w, r, tok, [32]byte{}, person); ok {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	}
}

// errNoRole: none of a person's groups maps to a role.
var errNoRole = errors.New("your account is in no group that this broker gives a role (admin.oidc.roles or admin.ldap.roles); ask its administrator")

// finish checks the provider's answer and reads the person from the ID
// token. Its errors say what failed, never a token.
func (o *OIDC) finish(r *http.Request) (Person, error) {
	c, err := r.Cookie(oidcCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(c.Value, ".")
	}
	q := r.URL.Query()
	switch {
	case q.Get("error") != "":
		return Person{}, fmt.Errorf("the provider refused: %s", cmp.Or(q.Get("error_description"), q.Get("error")))
	case len(parts) != 3:
		return Person{}, errors.New("this sign-in was not started here, or took longer than ten minutes: start again")
	case subtle.ConstantTimeCompare([]byte(parts[0]), []byte(q.Get("state"))) != 1:
		return Person{}, errors.New("the provider's answer is not for this sign-in (state): start again")
	}
	p, verifier, err := o.discover(r.Context())
	if err != nil {
		return Person{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), o.client()), oidcTimeout)
	defer cancel()
	tok, err := o.oauth(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Person{}, fmt.Errorf("the provider did not exchange the code: %s", cmp.Or(re.ErrorCode, re.Response.Status))
		}
		return Person{}, errors.New("the provider's token endpoint could not be reached")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Person{}, errors.New("the provider gave no ID token")
	}
	idToken, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Person{}, fmt.Errorf("the ID token is not valid: %s", verifyReason(err))
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(parts[1])) != 1 {
		return Person{}, errors.New("the ID token is not valid: not for this sign-in (nonce)")
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return Person{}, errors.New("the ID token's claims do not read")
	}
	person := Person{Via: "oidc", Name: o.name(claims, idToken.Subject), Groups: sortedGroups(stringsOf(claims[cmp.Or(o.GroupsClaim, "groups")]))}
	return person, nil
}

// verifyReason says why go-oidc refused an ID token, in a few words.
func verifyReason(err error) string {
	var expired *oidc.TokenExpiredError
	switch s := err.Error(); {
	case errors.As(err, &expired):
		return "expired"
	case strings.Contains(s, "signature"):
		return "its signature does not match the provider's keys"
	case strings.Contains(s, "audience") || strings.Contains(s, "aud"):
		return "it is for another client"
	case strings.Contains(s, "issuer"):
		return "it is from another issuer"
	}
	return "it does not verify"
}

// name is what the audit trail calls the person: the configured claim,
// else preferred_username, email, sub.
func (o *OIDC) name(claims map[string]any, subject string) string {
	for _, c := range []string{o.UserClaim, "preferred_username", "email"} {
		if s, ok := claims[c].(string); c != "" && ok && s != "" {
			return s
		}
	}
	return subject
}

// stringsOf reads a claim that lists strings (or is one).
func stringsOf(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// refusedSignIn audits a sign-in that failed and sends the person back
// to the console's sign-in page with why.
func (a *API) refusedSignIn(w http.ResponseWriter, r *http.Request, who, via string, why error) {
	a.record(r, who, "console.sign_in", "refused: "+why.Error(), nil, via)
	signInFailed(w, r, why.Error())
}

// signInFailed sends the browser to the sign-in page, which shows why.
func signInFailed(w http.ResponseWriter, r *http.Request, why string) {
	http.Redirect(w, r, "/ui/#/signin?error="+url.QueryEscape(why), http.StatusFound)
}

// methods answers GET /ui/sign-in: the ways to sign in, for the
// console's sign-in page (no authentication needed; names no secret).
func (a *API) methods(w http.ResponseWriter, _ *http.Request) {
	ways := []string{"token"}
	if a.People.OIDC() != nil {
		ways = append(ways, "oidc")
	}
	if a.People.LDAP() != nil {
		ways = append(ways, "ldap")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string][]string{"ways": slices.Clip(ways)})
}
