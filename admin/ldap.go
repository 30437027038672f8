package admin

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAP is sign-in with a directory's password (OpenLDAP, Active
// Directory): a bind as the service account (or none) finds the person
// under UserBase by UserFilter, then a bind as the person checks the
// password, and the person's GroupAttribute values are their groups.
// The password goes to the directory only; it is never logged, audited
// or kept.
type LDAP struct {
	URL            string // ldap:// or ldaps://
	StartTLS       bool
	TLS            *tls.Config // nil: the system's roots
	BindDN         string
	BindPassword   string
	UserBase       string
	UserFilter     string // with {username}; default (uid={username})
	GroupAttribute string // default memberOf
	Roles          map[string]string
	Limits         map[string]Limits // group -> what its people are limited to
	Timeout        time.Duration     // each call; default 10s
}

// errBadCredentials: the name or the password is wrong (one message for
// both, so that the answer does not tell which names exist).
var errBadCredentials = errors.New("wrong user name or password")

// errDirectory: the directory could not be asked.
type errDirectory struct{ why string }

func (e *errDirectory) Error() string { return "the directory could not be asked: " + e.why }

// Authenticate checks username and password against the directory and
// returns the person with their groups.
func (l *LDAP) Authenticate(username, password string) (Person, error) {
	username = strings.TrimSpace(username)
	// An empty password makes an unauthenticated bind, which a directory
	// accepts for anyone: never a sign-in.
	if username == "" || password == "" {
		return Person{}, errBadCredentials
	}
	timeout := cmp.Or(l.Timeout, 10*time.Second)
	conn, err := ldap.DialURL(l.URL, ldap.DialWithTLSConfig(l.TLS), ldap.DialWithDialer(&net.Dialer{Timeout: timeout}))
	if err != nil {
		return Person{}, &errDirectory{ldapReason(err)}
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	if l.StartTLS {
		if err := conn.StartTLS(l.tlsConfig()); err != nil {
			return Person{}, &errDirectory{"StartTLS: " + ldapReason(err)}
		}
	}
	if l.BindDN != "" {
		if err := conn.Bind(l.BindDN, l.BindPassword); err != nil {
			return Person{}, &errDirectory{"the service account (bind_dn) could not bind: " + ldapReason(err)}
		}
	}
	attr := cmp.Or(l.GroupAttribute, "memberOf")
	filter := strings.ReplaceAll(cmp.Or(l.UserFilter, "(uid={username})"), "{username}", ldap.EscapeFilter(username))
	res, err := conn.Search(ldap.NewSearchRequest(l.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(timeout/time.Second), false,
		filter, []string{attr}, nil))
	if err != nil {
		return Person{}, &errDirectory{"the search for the person failed: " + ldapReason(err)}
	}
	if len(res.Entries) != 1 {
		return Person{}, errBadCredentials // none, or a filter that is not unique
	}
	entry := res.Entries[0]
	if err := conn.Bind(entry.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return Person{}, errBadCredentials
		}
		return Person{}, &errDirectory{"the person's bind failed: " + ldapReason(err)}
	}
	return Person{Name: username, Via: "ldap", Groups: sortedGroups(entry.GetAttributeValues(attr))}, nil
}

func (l *LDAP) tlsConfig() *tls.Config {
	if l.TLS != nil {
		return l.TLS
	}
	host := strings.TrimPrefix(strings.TrimPrefix(l.URL, "ldap://"), "ldaps://")
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}

// ldapReason is an LDAP error in words: the server's result code's name,
// never its diagnostic text (which may echo a DN or a filter), or the
// client's own network error.
func ldapReason(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		if le.ResultCode >= ldap.ErrorNetwork && le.Err != nil { // the client's own: a connection refused, a timeout
			return le.Err.Error()
		}
		if name, ok := ldap.LDAPResultCodeMap[le.ResultCode]; ok {
			return fmt.Sprintf("%s (%d)", name, le.ResultCode)
		}
		return fmt.Sprintf("result code %d", le.ResultCode)
	}
	return err.Error()
}

// ldapLogin is POST /ui/login with {"username", "password"}.
func (a *API) ldapLogin(w http.ResponseWriter, r *http.Request, username, password string) {
	l := a.People.LDAP()
	if l == nil {
		writeError(w, http.StatusBadRequest, "sign-in by user name and password is not configured (admin.ldap); sign in with an API token")
		return
	}
	person, err := l.Authenticate(username, password)
	var dirErr *errDirectory
	switch {
	case errors.As(err, &dirErr):
		a.record(r, strings.TrimSpace(username), "console.sign_in", "refused: "+err.Error(), nil, "ldap")
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		a.refused(w, r, strings.TrimSpace(username), http.StatusUnauthorized, "401 "+err.Error(), "console sign-in (ldap)", err.Error())
		return
	}
	tok, ok := a.People.token(person)
	if !ok {
		a.record(r, person.Name, "console.sign_in", "refused: "+errNoRole.Error(), nil, "ldap")
		writeError(w, http.StatusForbidden, errNoRole.Error())
		return
	}
	if sess, ok := a.startSession(w, r, tok, [32]byte{}, person); ok {
		writeJSON(w, http.StatusOK, a.info(tok, sess))
	}
}
