package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// DestinationType is what the config knows of one kind of destination:
// its name, the keys of DestinationConfig it takes besides the common
// ones, its own checks and defaults. Each kind is registered once, by the
// package that delivers to it (package delivery registers its types when
// it is imported), so adding a kind touches no switch here.
type DestinationType struct {
	Name string
	// Keys are the type-specific keys it takes (see typeKeys); a key of
	// another type set on it is a problem.
	Keys []string
	// Check adds a problem for anything wrong with d's own keys; key is
	// d's key path, such as destinations[2].
	Check func(d DestinationConfig, key string, c *Checker)
	// Defaults, if set, fills d's own keys left out.
	Defaults func(d *DestinationConfig)
}

var (
	typesMu          sync.RWMutex
	destinationTypes = map[string]DestinationType{}
	typeOrder        []string // as registered
)

// RegisterDestinationType makes a kind of destination known. It panics if
// the name is taken: two kinds cannot share one.
func RegisterDestinationType(t DestinationType) {
	typesMu.Lock()
	defer typesMu.Unlock()
	if _, dup := destinationTypes[t.Name]; dup {
		panic("config: destination type " + t.Name + " registered twice")
	}
	destinationTypes[t.Name] = t
	typeOrder = append(typeOrder, t.Name)
}

// DestinationTypes are the names of the kinds registered, in the order
// they were.
func DestinationTypes() []string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	return slices.Clone(typeOrder)
}

func destinationType(name string) (DestinationType, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	t, ok := destinationTypes[name]
	return t, ok
}

// typeKeys are DestinationConfig's keys that belong to one kind or
// another; every other key is common to all kinds. A key is set when its
// field is not zero.
var typeKeys = []string{"addr", "url", "headers", "content_type", "dir", "password", "table", "columns", "row_per", "time_zone",
	"user", "private_key_file", "known_hosts", "insecure_skip_host_key_check", "file_name", "fhir_bundle", "charset", "token", "oauth2"}

// keySet reports whether d sets the key named by its mapstructure tag.
func keySet(d DestinationConfig, key string) bool {
	return !fieldByKey(reflect.ValueOf(d), []string{key}).IsZero()
}

// Checker is how a destination type's Check reports problems.
type Checker struct{ v *validator }

// Add adds a problem at key.
func (c *Checker) Add(key, format string, args ...any) { c.v.add(key, format, args...) }

// SSH checks the keys an SFTP destination logs in with.
func (c *Checker) SSH(key, addr, user, password, keyFile string) {
	c.v.ssh(key, addr, user, password, keyFile)
}

// Addr checks that addr is HOST:PORT; false (and a problem) if not.
func (c *Checker) Addr(key, addr string) bool { return c.v.addr(key, addr) }

// checkDestinationType runs d's type's checks, and refuses the keys of
// other types.
func checkDestinationType(v *validator, key string, d DestinationConfig) {
	t, ok := destinationType(d.Type)
	if !ok {
		v.add(key+".type", "%q is not one of %s", d.Type, strings.Join(DestinationTypes(), ", "))
		return
	}
	for _, k := range typeKeys {
		if keySet(d, k) && !slices.Contains(t.Keys, k) {
			v.add(key+"."+k, "is not a key of type %s destinations", d.Type)
		}
	}
	if t.Check != nil {
		t.Check(d, key, &Checker{v})
	}
}

// DestinationTypeDefaults fills d's own keys by its type, if it is known
// (ApplyDefaults does, for every destination).
func DestinationTypeDefaults(d *DestinationConfig) {
	if t, ok := destinationType(d.Type); ok && t.Defaults != nil {
		t.Defaults(d)
	}
}
