package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// DestinationType is what the config knows of one kind of destination:
// its name, the struct of its own keys, its checks and defaults. Each
// kind is registered once, in its own file, by the package that delivers
// to it (delivery.Register), so adding a kind touches nothing here.
type DestinationType struct {
	Name string
	// Options is the struct of the type's own keys (its mapstructure
	// tags), besides the keys every destination has (DestinationConfig).
	// A destination of the type holds a pointer to one in its Options.
	Options reflect.Type
	// Encodings are those the type can send; empty: every one.
	Encodings []string
	// ReadsTimes: the type reads HL7 times itself (a database column),
	// so time_zone applies to it whatever its encoding.
	ReadsTimes bool
	// Check adds a problem for anything wrong with d's own keys (its
	// Options); key is d's key path, such as destinations[2].
	Check func(d DestinationConfig, key string, c *Checker)
	// Defaults, if set, fills d's own keys left out (and may settle a
	// common one, as a fhir destination's encoding).
	Defaults func(d *DestinationConfig)
	// Warnings, if set, are what a valid d does that is risky (at key):
	// check prints them and serve logs them.
	Warnings func(d DestinationConfig, key string) []Problem
}

// registry holds the registered types of one kind (destination, source).
type registry[T any] struct {
	kind   string
	mu     sync.RWMutex
	byName map[string]T
	order  []string // as registered
}

func (r *registry[T]) add(name string, t T, options reflect.Type, common reflect.Type) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[name]; dup {
		panic("config: " + r.kind + " type " + name + " registered twice")
	}
	if options == nil || options.Kind() != reflect.Struct {
		panic("config: " + r.kind + " type " + name + " has no options struct")
	}
	for _, k := range Keys(options) {
		if slices.Contains(Keys(common), k) {
			panic("config: " + r.kind + " type " + name + " redefines the common key " + k)
		}
	}
	if r.byName == nil {
		r.byName = map[string]T{}
	}
	r.byName[name] = t
	r.order = append(r.order, name)
}

func (r *registry[T]) get(name string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.byName[name]
	return t, ok
}

func (r *registry[T]) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.order)
}

var destinationTypes = registry[DestinationType]{kind: "destination"}

// RegisterDestinationType makes a kind of destination known. It panics if
// the name is taken (two kinds cannot share one) or if its options use a
// key every destination has.
func RegisterDestinationType(t DestinationType) {
	destinationTypes.add(t.Name, t, t.Options, reflect.TypeFor[DestinationConfig]())
}

// DestinationTypes are the names of the kinds registered, in the order
// they were.
func DestinationTypes() []string { return destinationTypes.names() }

// LookupDestinationType returns the registration of a kind of destination.
func LookupDestinationType(name string) (DestinationType, bool) { return destinationTypes.get(name) }

// OptionsOf returns a destination's own keys as its type's struct: for
// package delivery's types, which know their T. A destination built in
// code without Options gets the zero T.
func OptionsOf[T any](d DestinationConfig) *T {
	if o, ok := d.Options.(*T); ok && o != nil {
		return o
	}
	return new(T)
}

// Checker is how a source or destination type's Check reports problems,
// with the checks types share.
type Checker struct {
	v *validator
	c *Config
}

// Add adds a problem at key.
func (c *Checker) Add(key, format string, args ...any) { c.v.add(key, format, args...) }

// ServerTLS checks the TLS files of a server (a source's listening
// socket): both cert_file and key_file or neither, files that exist.
func (c *Checker) ServerTLS(key string, t ServerTLSFiles) { c.v.serverTLS(key, t.Files()) }

// Tokens checks a list of tokens (names unique, each readable, given one
// way), without printing one.
func (c *Checker) Tokens(key string, tokens []SourceTokenConfig) {
	c.v.names(key, len(tokens), func(j int) string { return tokens[j].Name })
	for j, t := range tokens {
		c.c.validateToken(c.v, fmt.Sprintf("%s[%d]", key, j), TokenConfig{Name: t.Name, TokenFile: t.TokenFile, TokenEnv: t.TokenEnv})
	}
}

// SSH checks the keys an SFTP source or destination logs in with.
func (c *Checker) SSH(key string, s SSHLogin) { c.v.ssh(key, s) }

// Addr checks that addr is HOST:PORT; false (and a problem) if not.
func (c *Checker) Addr(key, addr string) bool { return c.v.addr(key, addr) }

// checkDestinationType runs d's type's checks: the encodings it can send,
// the enumerated values of its own keys, and its own Check.
func (c *Config) checkDestinationType(v *validator, key string, d DestinationConfig) {
	t, ok := LookupDestinationType(d.Type)
	if !ok {
		v.add(key+".type", "%s", unknownType(d.Type, DestinationTypes(), "destination", "delivery"))
		return
	}
	if len(t.Encodings) > 0 && !slices.Contains(t.Encodings, d.Encoding) {
		v.add(key+".encoding", "%s is not for type %s, which sends %s: leave encoding out", d.Encoding, d.Type, strings.Join(t.Encodings, " or "))
	}
	if d.Options != nil && reflect.TypeOf(d.Options) != reflect.PointerTo(t.Options) {
		v.add(key, "options of type %T are not those of a %s destination (%s)", d.Options, d.Type, t.Options)
		return
	}
	if d.Options != nil {
		checkEnums(v, key, reflect.ValueOf(d.Options).Elem())
	}
	if t.Check != nil {
		t.Check(d, key, &Checker{v: v, c: c})
	}
}

// DestinationTypeDefaults gives d the options of its type when it has none
// (a destination built in code), then its type's defaults.
func DestinationTypeDefaults(d *DestinationConfig) {
	t, ok := LookupDestinationType(d.Type)
	if !ok {
		return
	}
	if d.Options == nil {
		d.Options = reflect.New(t.Options).Interface()
	}
	if t.Defaults != nil && reflect.TypeOf(d.Options) == reflect.PointerTo(t.Options) {
		t.Defaults(d)
		keepZeros(d.Options, d.zeros)
	}
}

// decodeDestinationOptions decodes the keys of destination i that are not
// common (rest) into its type's struct. An unknown type leaves them for
// the type's problem; a key the type does not take is "unknown key for
// type T" at its position.
func decodeDestinationOptions(i int, d *DestinationConfig, rest map[string]any) []Problem {
	t, ok := LookupDestinationType(d.Type)
	if !ok {
		return nil
	}
	var problems []Problem
	d.Options, problems = decodeTypeOptions(fmt.Sprintf("destinations[%d]", i), "type "+d.Type+" destinations", t.Options, rest)
	d.zeros = explicitZeros(rest)
	return problems
}

// explicitZeros are the keys of rest written as 0 or false: a type's
// Defaults fills zero keys, and these are put back after it, so that
// stable_for: 0 means none rather than "left out".
func explicitZeros(rest map[string]any) map[string]any {
	var out map[string]any
	for k, v := range rest {
		zero := false
		switch x := v.(type) {
		case int:
			zero = x == 0
		case float64:
			zero = x == 0
		case bool:
			zero = !x
		case string:
			d, err := time.ParseDuration(x)
			zero = x == "0" || err == nil && d == 0
		}
		if zero {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}

// keepZeros puts back into options (a pointer) the keys written as zero.
func keepZeros(options any, zeros map[string]any) {
	if len(zeros) > 0 && options != nil {
		_ = decodeInto("", zeros, options) // decoded once already: no problem left
	}
}

// decodeTypeOptions decodes rest into a new struct of type options; a key
// it does not have "is not a key of " whose.
func decodeTypeOptions(key, whose string, options reflect.Type, rest map[string]any) (any, []Problem) {
	opts := reflect.New(options)
	problems := decodeInto(key, rest, opts.Interface())
	for j := range problems {
		if problems[j].Message == "unknown key" {
			problems[j].Message = "is not a key of " + whose
		}
	}
	return opts.Interface(), problems
}

// Keys are the keys of a struct's mapstructure tags, a nested struct's
// as key.sub (squashed ones as the struct's own), sorted.
func Keys(t reflect.Type) []string { return keysOf(t, map[reflect.Type]bool{}) }

// keysOf is Keys, not going into a struct already being listed (a
// condition holds conditions): such a key is listed as itself.
func keysOf(t reflect.Type, open map[reflect.Type]bool) []string {
	open[t] = true
	defer delete(open, t)
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || name == "-" || (name == "" && opts != "squash") {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case opts == "squash":
			keys = append(keys, keysOf(ft, open)...)
		case ft.Kind() == reflect.Struct && ft != durationType && !open[ft]:
			for _, k := range keysOf(ft, open) {
				keys = append(keys, name+"."+k)
			}
		default:
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}

// checkEnums checks every string field of a struct that has an enum tag
// (and a value): the allowed values of a type's own keys are checked
// without code of its own.
func checkEnums(v *validator, key string, s reflect.Value) {
	for i := range s.NumField() {
		f := s.Type().Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() {
			continue
		}
		fv := s.Field(i)
		switch {
		case opts == "squash" && fv.Kind() == reflect.Struct:
			checkEnums(v, key, fv)
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			checkEnums(v, key+"."+name, fv)
		case fv.Kind() == reflect.String && f.Tag.Get("enum") != "" && fv.String() != "":
			v.oneOf(key+"."+name, fv.String(), strings.Split(f.Tag.Get("enum"), ",")...)
		}
	}
}

// unknownType is the problem of a type no registration has: the types
// there are, or (a program that links none) which package registers them.
func unknownType(name string, known []string, kind, pkg string) string {
	if len(known) == 0 {
		return fmt.Sprintf("%q: no %s types are registered (a program that loads configs imports package %s)", name, kind, pkg)
	}
	return fmt.Sprintf("%q is not one of %s", name, strings.Join(known, ", "))
}
