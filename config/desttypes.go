package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
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

var (
	typesMu          sync.RWMutex
	destinationTypes = map[string]DestinationType{}
	typeOrder        []string // as registered
)

// RegisterDestinationType makes a kind of destination known. It panics if
// the name is taken (two kinds cannot share one) or if its options use a
// key every destination has.
func RegisterDestinationType(t DestinationType) {
	typesMu.Lock()
	defer typesMu.Unlock()
	if _, dup := destinationTypes[t.Name]; dup {
		panic("config: destination type " + t.Name + " registered twice")
	}
	if t.Options == nil || t.Options.Kind() != reflect.Struct {
		panic("config: destination type " + t.Name + " has no options struct")
	}
	common := Keys(reflect.TypeFor[DestinationConfig]())
	for _, k := range Keys(t.Options) {
		if slices.Contains(common, k) {
			panic("config: destination type " + t.Name + " redefines the common key " + k)
		}
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

// LookupDestinationType returns the registration of a kind of destination.
func LookupDestinationType(name string) (DestinationType, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	t, ok := destinationTypes[name]
	return t, ok
}

// OptionsOf returns a destination's own keys as its type's struct: for
// package delivery's types, which know their T. A destination built in
// code without Options gets the zero T.
func OptionsOf[T any](d DestinationConfig) *T {
	if o, ok := d.Options.(*T); ok && o != nil {
		return o
	}
	return new(T)
}

// Checker is how a destination type's Check reports problems.
type Checker struct{ v *validator }

// Add adds a problem at key.
func (c *Checker) Add(key, format string, args ...any) { c.v.add(key, format, args...) }

// SSH checks the keys an SFTP destination logs in with.
func (c *Checker) SSH(key string, s SSHLogin) { c.v.ssh(key, s) }

// Addr checks that addr is HOST:PORT; false (and a problem) if not.
func (c *Checker) Addr(key, addr string) bool { return c.v.addr(key, addr) }

// checkDestinationType runs d's type's checks: the encodings it can send,
// the enumerated values of its own keys, and its own Check.
func checkDestinationType(v *validator, key string, d DestinationConfig) {
	t, ok := LookupDestinationType(d.Type)
	if !ok {
		v.add(key+".type", "%q is not one of %s", d.Type, strings.Join(DestinationTypes(), ", "))
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
		t.Check(d, key, &Checker{v})
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
	opts := reflect.New(t.Options)
	key := fmt.Sprintf("destinations[%d]", i)
	problems := decodeInto(key, rest, opts.Interface())
	for j := range problems {
		if problems[j].Message == "unknown key" {
			problems[j].Message = fmt.Sprintf("is not a key of type %s destinations", d.Type)
		}
	}
	d.Options = opts.Interface()
	return problems
}

// Keys are the keys of a struct's mapstructure tags, a nested struct's
// as key.sub (squashed ones as the struct's own), sorted.
func Keys(t reflect.Type) []string {
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
			keys = append(keys, Keys(ft)...)
		case ft.Kind() == reflect.Struct && ft != durationType:
			for _, k := range Keys(ft) {
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
