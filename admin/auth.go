package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strings"
	"sync/atomic"
)

// Roles, each allowed what the one before it is, and more.
const (
	RoleViewer   = "viewer"   // status, metrics, searches and lists: no message content
	RoleOperator = "operator" // also message content, replay, pause and resume, dead letters, the audit trail
	RoleAdmin    = "admin"    // also purge
)

var roleRank = map[string]int{RoleViewer: 1, RoleOperator: 2, RoleAdmin: 3}

// Token is one API token as kept in memory: its SHA-256, never itself.
type Token struct {
	Name string
	Role string
	// Sources and Destinations, when set, limit what the token sees and
	// acts on (admin.tokens' sources and destinations): messages received
	// on those listeners or sources, those destinations' dead letters and
	// pauses.
	Sources, Destinations []string
	hash                  [32]byte
}

// NewToken keeps only the hash of secret.
func NewToken(name, role, secret string) Token {
	return Token{Name: name, Role: role, hash: sha256.Sum256([]byte(secret))}
}

// Scoped is t limited to sources and destinations (nil or empty: all).
func (t Token) Scoped(sources, destinations []string) Token {
	if len(sources) > 0 {
		t.Sources = sources
	}
	if len(destinations) > 0 {
		t.Destinations = destinations
	}
	return t
}

// MaySee says whether the token may see messages received on listener.
func (t Token) MaySee(listener string) bool {
	return t.Sources == nil || slices.Contains(t.Sources, listener)
}

// MayUse says whether the token may see and act on destination's letters
// and pause it.
func (t Token) MayUse(destination string) bool {
	return t.Destinations == nil || slices.Contains(t.Destinations, destination)
}

// Tokens is the set of valid tokens; Set replaces it at once (a reload).
type Tokens struct{ set atomic.Pointer[[]Token] }

// Set replaces the tokens.
func (t *Tokens) Set(tokens []Token) { t.set.Store(&tokens) }

// Len is how many tokens are set.
func (t *Tokens) Len() int {
	if p := t.set.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// lookup finds the token an Authorization header carries. Every token is
// compared, in constant time, so timing tells nothing of which matched.
func (t *Tokens) lookup(authorization string) (Token, bool) {
	secret, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || t == nil {
		return Token{}, false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	var found Token
	hit := 0
	if p := t.set.Load(); p != nil {
		for _, tok := range *p {
			if subtle.ConstantTimeCompare(h[:], tok.hash[:]) == 1 {
				found, hit = tok, 1
			}
		}
	}
	return found, hit == 1
}

// byHash finds the token whose secret hashes to h (a console session's).
func (t *Tokens) byHash(h [32]byte) (Token, bool) {
	if t == nil {
		return Token{}, false
	}
	if p := t.set.Load(); p != nil {
		for _, tok := range *p {
			if subtle.ConstantTimeCompare(h[:], tok.hash[:]) == 1 {
				return tok, true
			}
		}
	}
	return Token{}, false
}

// allows reports whether role may do what needs at least min.
func allows(role, min string) bool { return roleRank[role] >= roleRank[min] }
