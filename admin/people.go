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

// Limits are the listeners and sources, and the destinations, a group's
// people are limited to (nil: all), as a token's Scoped.
type Limits struct{ Sources, Destinations []string }

// token is what person may do now: a Token named after them with the
// highest role their groups map to, limited as their groups are; false
// when the way they came is off or no group maps to a role any more.
func (w *Ways) token(p Person) (Token, bool) {
	var roles map[string]string
	var limits map[string]Limits
	switch g := w.get(); {
	case p.Via == "oidc" && g.oidc != nil:
		roles, limits = g.oidc.Roles, g.oidc.Limits
	case p.Via == "ldap" && g.ldap != nil:
		roles, limits = g.ldap.Roles, g.ldap.Limits
	default:
		return Token{}, false
	}
	role, ok := RoleOf(p.Groups, roles)
	if !ok {
		return Token{}, false
	}
	l := LimitsOf(p.Groups, roles, limits)
	return Token{Name: p.Name, Role: role}.Scoped(l.Sources, l.Destinations), true
}

// LimitsOf is what a person in groups is limited to: nothing when any of
// their groups with a role has no limits (that group sees all), else
// every source and destination their limited groups allow, together.
// Sources and Destinations are limited apart: a group limited to sources
// only sees every destination.
func LimitsOf(groups []string, roles map[string]string, limits map[string]Limits) Limits {
	var out Limits
	srcAll, dstAll := false, false
	for _, g := range groups {
		for key := range roles {
			if !groupMatches(g, key) {
				continue
			}
			l, ok := limits[key]
			srcAll = srcAll || !ok || len(l.Sources) == 0
			dstAll = dstAll || !ok || len(l.Destinations) == 0
			out.Sources = append(out.Sources, l.Sources...)
			out.Destinations = append(out.Destinations, l.Destinations...)
		}
	}
	if srcAll {
		out.Sources = nil
	}
	if dstAll {
		out.Destinations = nil
	}
	out.Sources, out.Destinations = sortedGroups(out.Sources), sortedGroups(out.Destinations)
	return out
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
