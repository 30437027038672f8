package admin

import (
	"slices"
	"strings"
	"sync/atomic"
)

// People sign in to the console as themselves, through an OpenID
// Connect provider (OIDC) or a directory's password (LDAP); their role
// comes from their groups, read again from the config in force at each
// request, so a reload that takes a group's role away takes it from
// everyone signed in with it. API tokens stay for machines.

// Person is someone signed in as themselves.
type Person struct {
	Name   string   // what the audit trail names them by
	Via    string   // oidc or ldap
	Groups []string // as the provider or directory gave them
}

// Ways are the ways people may sign in, replaced at once on reload.
type Ways struct {
	set atomic.Pointer[ways]
}

type ways struct {
	oidc *OIDC
	ldap *LDAP
}

// Set replaces the ways (nil: that way is off).
func (w *Ways) Set(oidc *OIDC, ldap *LDAP) { w.set.Store(&ways{oidc: oidc, ldap: ldap}) }

func (w *Ways) get() ways {
	if w == nil {
		return ways{}
	}
	if p := w.set.Load(); p != nil {
		return *p
	}
	return ways{}
}

// OIDC is the OpenID Connect way, or nil.
func (w *Ways) OIDC() *OIDC { return w.get().oidc }

// LDAP is the directory way, or nil.
func (w *Ways) LDAP() *LDAP { return w.get().ldap }

// token is what person may do now: a Token named after them with the
// highest role their groups map to; false when the way they came is off
// or no group maps to a role any more.
func (w *Ways) token(p Person) (Token, bool) {
	var roles map[string]string
	switch g := w.get(); {
	case p.Via == "oidc" && g.oidc != nil:
		roles = g.oidc.Roles
	case p.Via == "ldap" && g.ldap != nil:
		roles = g.ldap.Roles
	default:
		return Token{}, false
	}
	role, ok := RoleOf(p.Groups, roles)
	if !ok {
		return Token{}, false
	}
	return Token{Name: p.Name, Role: role}, true
}

// RoleOf is the highest role that groups map to in roles. A group
// matches a key of roles exactly, without regard to case, or (a
// directory's distinguished name, CN=Lab,OU=Groups,DC=example,DC=org)
// by its first RDN's value (Lab).
func RoleOf(groups []string, roles map[string]string) (string, bool) {
	best := ""
	for _, g := range groups {
		for key, role := range roles {
			if groupMatches(g, key) && roleRank[role] > roleRank[best] {
				best = role
			}
		}
	}
	return best, best != ""
}

func groupMatches(group, key string) bool {
	if strings.EqualFold(group, key) {
		return true
	}
	first, _, isDN := strings.Cut(group, ",")
	_, value, ok := strings.Cut(first, "=")
	return isDN && ok && strings.EqualFold(strings.TrimSpace(value), key)
}

// sortedGroups is groups without repeats, sorted (a session keeps them).
func sortedGroups(groups []string) []string {
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Compact(out)
}
