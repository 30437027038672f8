package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

// SourceConfig is one source of messages other than an MLLP listener
// (top-level "sources:"): the keys every source has, and in Options those
// of its type. A source's name is also the name routes and the message
// history know it by, like a listener's: the two share one namespace.
type SourceConfig struct {
	Name            string   `mapstructure:"name"`
	Type            string   `mapstructure:"type" enum:"(registered source types)"`
	MaxMessageBytes int      `mapstructure:"max_message_bytes"`
	AcceptTypes     []string `mapstructure:"accept_types"` // empty: all
	// Charset names the messages' character set (HL7 table 0211 or an
	// alias); empty: MSH-18 when it names one. Bytes are stored as they
	// are; a mismatch is logged (where, never what) and counted.
	Charset string `mapstructure:"charset"`
	// Validation is as a listener's: off, record (default) or reject.
	Validation string     `mapstructure:"validation" enum:"off,record,reject"`
	Profile    string     `mapstructure:"profile"` // as a listener's
	Rules      []SiteRule `mapstructure:"rules"`   // as a listener's
	// Format is what the source receives: HL7 v2 (hl7, the default), or
	// JSON or XML documents that Script (or ScriptFile) turns into HL7 v2
	// messages (http, file and sftp sources).
	Format     string `mapstructure:"format" enum:"hl7,json,xml"`
	Script     string `mapstructure:"script"`
	ScriptFile string `mapstructure:"script_file"`

	// Options are the keys of the source's type, as a pointer to the
	// struct its registration names (SourceType.Options), decoded from the
	// same YAML mapping by Load; a config built in code sets it.
	Options any `mapstructure:"-"`
	// Rest holds the keys that are not common while Load decodes them
	// into Options; empty after.
	Rest map[string]any `mapstructure:",remain"`

	zeros map[string]any // own keys written as 0 or false (explicitZeros)
}

// SourceType is what the config knows of one kind of source: its name,
// the struct of its own keys, its checks, defaults and warnings. Each
// kind is registered once, in its own file, by the package that runs it
// (ingest.RegisterSource).
type SourceType struct {
	Name string
	// Options is the struct of the type's own keys (its mapstructure
	// tags), besides SourceConfig's.
	Options reflect.Type
	// Check adds a problem for anything wrong with s's own keys, at key
	// (sources[2]).
	Check func(s SourceConfig, key string, c *Checker)
	// Defaults, if set, fills s's own keys left out.
	Defaults func(s *SourceConfig)
	// Warnings, if set, are what a valid s does that is risky.
	Warnings func(s SourceConfig, key string) []Problem
	// Documents: it takes format json and xml (with a script), besides
	// HL7 v2.
	Documents bool
	// Rows: it builds a message of each row it reads with its script,
	// which it needs.
	Rows bool
}

var sourceTypes = registry[SourceType]{kind: "source"}

// RegisterSourceType makes a kind of source known. It panics if the name
// is taken or its options use a key every source has.
func RegisterSourceType(t SourceType) {
	sourceTypes.add(t.Name, t, t.Options, reflect.TypeFor[SourceConfig]())
}

// SourceTypes are the names of the kinds of source registered.
func SourceTypes() []string { return sourceTypes.names() }

// LookupSourceType returns the registration of a kind of source.
func LookupSourceType(name string) (SourceType, bool) { return sourceTypes.get(name) }

// SourceOptionsOf returns a source's own keys as its type's struct; the
// zero T when it has none.
func SourceOptionsOf[T any](s SourceConfig) *T {
	if o, ok := s.Options.(*T); ok && o != nil {
		return o
	}
	return new(T)
}

// SourceTypeDefaults gives s the options of its type when it has none (a
// source built in code), then its type's defaults.
func SourceTypeDefaults(s *SourceConfig) {
	t, ok := LookupSourceType(s.Type)
	if !ok {
		return
	}
	if s.Options == nil {
		s.Options = reflect.New(t.Options).Interface()
	}
	if t.Defaults != nil && reflect.TypeOf(s.Options) == reflect.PointerTo(t.Options) {
		t.Defaults(s)
		keepZeros(s.Options, s.zeros)
	}
}

// MLLPOptions are the keys of a source of type mllp: an MLLP listener
// written under sources (listeners: is its shorthand, and both are the
// same thing inside: Load turns each into a listener).
type MLLPOptions struct {
	Addr           string        `mapstructure:"addr"`
	AckMode        string        `mapstructure:"ack_mode" enum:"auto,original,enhanced"`
	MaxConnections int           `mapstructure:"max_connections"`
	IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
	ReadTimeout    time.Duration `mapstructure:"read_timeout"`
	TLS            TLSFiles      `mapstructure:"tls"`
}

func init() {
	RegisterSourceType(SourceType{Name: "mllp", Options: reflect.TypeFor[MLLPOptions]()})
}

// mllpSourcesAsListeners moves each source of type mllp to the listeners,
// remembering where each listener and source was written, so that their
// problems are named there (rewriteKeys).
func (c *Config) mllpSourcesAsListeners() {
	var kept []SourceConfig
	for i, s := range c.Sources {
		written := c.writtenAt(fmt.Sprintf("sources[%d]", i))
		o, ok := s.Options.(*MLLPOptions)
		if s.Type != "mllp" || !ok {
			c.setWrittenAt(fmt.Sprintf("sources[%d]", len(kept)), written)
			kept = append(kept, s)
			continue
		}
		l := ListenerConfig{Name: s.Name, Addr: o.Addr, AckMode: o.AckMode, MaxMessageBytes: s.MaxMessageBytes, AcceptTypes: s.AcceptTypes,
			MaxConnections: o.MaxConnections, IdleTimeout: o.IdleTimeout, ReadTimeout: o.ReadTimeout, TLS: o.TLS, Charset: s.Charset,
			Validation: s.Validation, Profile: s.Profile, Rules: s.Rules}
		if _, zero := s.zeros["idle_timeout"]; zero {
			l.IdleTimeout = NoTimeout // idle_timeout: 0 written out: none
		}
		c.setWrittenAt(fmt.Sprintf("listeners[%d]", len(c.Listeners)), written)
		c.Listeners = append(c.Listeners, l)
	}
	c.Sources = kept
}

// writtenAt is the key an entry (listeners[2], sources[0]) was written at.
func (c *Config) writtenAt(key string) string {
	if w, ok := c.keyAt[key]; ok {
		return w
	}
	return key
}

func (c *Config) setWrittenAt(key, written string) {
	if key == written {
		delete(c.keyAt, key)
		return
	}
	if c.keyAt == nil {
		c.keyAt = map[string]string{}
	}
	c.keyAt[key] = written
}

// ListenerKey is the key path where listener i was written:
// listeners[i], or sources[j] for a source of type mllp.
func (c *Config) ListenerKey(i int) string { return c.writtenAt(fmt.Sprintf("listeners[%d]", i)) }

// rewriteKeys names each problem of a listener or source where it was
// written (a source of type mllp is a listener inside).
func (c *Config) rewriteKeys(problems []Problem) []Problem {
	if len(c.keyAt) == 0 {
		return problems
	}
	for i := range problems {
		key := problems[i].Key
		entry, rest := key, ""
		if j := strings.IndexByte(key, ']'); j >= 0 && (strings.HasPrefix(key, "listeners[") || strings.HasPrefix(key, "sources[")) {
			entry, rest = key[:j+1], key[j+1:]
		}
		problems[i].Key = c.writtenAt(entry) + rest
	}
	return problems
}

// SourceTokenConfig is a bearer token an HTTP source accepts, read from a
// file or an environment variable (never written in the config).
type SourceTokenConfig struct {
	Name      string `mapstructure:"name"`
	TokenFile string `mapstructure:"token_file"`
	TokenEnv  string `mapstructure:"token_env"`
}

// SourceToken reads an HTTP source's token. Its errors name where it was
// looked for, never the token.
func (c *Config) SourceToken(t SourceTokenConfig) (string, error) {
	return c.ReadToken(TokenConfig{Name: t.Name, TokenFile: t.TokenFile, TokenEnv: t.TokenEnv})
}

// Listener is the ingest settings of a source, in a listener's shape:
// ingest treats both alike.
func (s SourceConfig) Listener() ListenerConfig {
	return ListenerConfig{Name: s.Name, MaxMessageBytes: s.MaxMessageBytes, AcceptTypes: s.AcceptTypes, AckMode: "original", Validation: s.Validation, Profile: s.Profile, Rules: s.Rules}
}

// Intakes are every listener and source, a source in a listener's shape
// (Listener): what ingest, route test and import check messages against.
func (c *Config) Intakes() []ListenerConfig {
	out := slices.Clone(c.Listeners)
	for _, s := range c.Sources {
		out = append(out, s.Listener())
	}
	return out
}

// Origins are the names of every listener and source: what a route's
// from and when.listener may name.
func (c *Config) Origins() []string {
	var names []string
	for _, l := range c.Intakes() {
		names = append(names, l.Name)
	}
	return names
}

func (c *Config) validateSources(v *validator, listeners map[string]bool) map[string]bool {
	names := v.names("sources", len(c.Sources), func(i int) string { return c.Sources[i].Name })
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if listeners[s.Name] {
			v.add(key+".name", "%q is also a listener's name: sources and listeners share names", s.Name)
		}
		v.intake(key, s.MaxMessageBytes, s.AcceptTypes)
		c.checkProfile(v, key, s.Profile)
		c.setSiteRules(s.Name, c.compileSiteRules(v, key, s.Rules))
		if _, err := hl7.LookupCharset(s.Charset); err != nil {
			v.add(key+".charset", "%s", strings.TrimPrefix(err.Error(), "hl7: "))
		}
		c.validateBuilder(v, key, s)
		t, ok := LookupSourceType(s.Type)
		if !ok {
			v.add(key+".type", "%s", unknownType(s.Type, SourceTypes(), "source", "ingest"))
			continue
		}
		if s.Options != nil && reflect.TypeOf(s.Options) != reflect.PointerTo(t.Options) {
			v.add(key, "options of type %T are not those of a %s source (%s)", s.Options, s.Type, t.Options)
			continue
		}
		if s.Options != nil {
			checkEnums(v, key, reflect.ValueOf(s.Options).Elem())
		}
		if t.Check != nil {
			t.Check(s, key, &Checker{v: v, c: c})
		}
	}
	return names
}

// decodeSourceOptions decodes the keys of source i that are not common
// into its type's struct.
func decodeSourceOptions(i int, s *SourceConfig, rest map[string]any) []Problem {
	t, ok := LookupSourceType(s.Type)
	if !ok {
		return nil
	}
	var problems []Problem
	s.Options, problems = decodeTypeOptions(fmt.Sprintf("sources[%d]", i), "type "+s.Type+" sources", t.Options, rest)
	s.zeros = explicitZeros(rest)
	return problems
}

// IntakeFor names the listener or source a message of type typ comes
// from (want, or the first that takes it), or says why none would take it
// (route test's choice).
func (c *Config) IntakeFor(want, typ string) (name, why string) {
	for _, l := range c.Intakes() {
		if want != "" && l.Name != want {
			continue
		}
		if len(l.AcceptTypes) == 0 || slices.Contains(l.AcceptTypes, typ) {
			return l.Name, ""
		}
		if want != "" {
			return "", fmt.Sprintf("listener %s accepts %v, not %s (AR)", l.Name, l.AcceptTypes, typ)
		}
	}
	return "", fmt.Sprintf("no listener accepts %s (AR)", typ)
}

// Intake returns the listener or source named name, in a listener's
// shape.
func (c *Config) Intake(name string) (ListenerConfig, bool) {
	for _, l := range c.Intakes() {
		if l.Name == name {
			return l, true
		}
	}
	return ListenerConfig{}, false
}

// Destination returns the destination named name.
func (c *Config) Destination(name string) (DestinationConfig, bool) {
	i := slices.IndexFunc(c.Destinations, func(d DestinationConfig) bool { return d.Name == name })
	if i < 0 {
		return DestinationConfig{}, false
	}
	return c.Destinations[i], true
}

// originSet is every listener's and source's name, for routes.
func (c *Config) originSet() map[string]bool {
	m := map[string]bool{}
	for _, n := range c.Origins() {
		m[n] = true
	}
	return m
}

// acceptsAny says whether the source takes any of types (neverMatches).
func (s SourceConfig) acceptsAny(types []string) bool {
	if len(s.AcceptTypes) == 0 {
		return true
	}
	return slices.ContainsFunc(types, func(t string) bool { return slices.Contains(s.AcceptTypes, t) })
}

// validateBuilder checks a source's format and the script that turns its
// documents into HL7 v2.
func (c *Config) validateBuilder(v *validator, key string, s SourceConfig) {
	t, known := LookupSourceType(s.Type)
	rows := known && t.Rows
	if rows && s.Format != "" {
		v.add(key+".format", "a %s source builds a message of each row with its script: it takes no format", s.Type)
		return
	}
	if (s.Format == "" || s.Format == "hl7") && !rows {
		if s.Script != "" || s.ScriptFile != "" {
			v.add(key+".format", "a script builds messages from json or xml documents: give format: json or xml")
		}
		return
	}
	if known && !t.Documents && !rows {
		v.add(key+".format", "a %s source takes HL7 v2 only", s.Type)
		return
	}
	if s.Script == "" && s.ScriptFile == "" {
		what := "format " + s.Format
		if rows {
			what = "a " + s.Type + " source"
		}
		v.add(key+".script", "%s needs script or script_file: it builds the HL7 v2 message from each %s", what, map[bool]string{true: "row", false: "document"}[rows])
		return
	}
	if _, err := c.SourceBuilder(s); err != nil {
		var se *script.Error
		at := key + ".script"
		if s.ScriptFile != "" {
			at = key + ".script_file"
		}
		if errors.As(err, &se) && se.Line > 0 {
			v.add(at, "line %d:%d: %s", se.Line, se.Column, se.Reason)
			return
		}
		v.add(at, "%v", err)
	}
}

// SourceScriptDigest changes when what source s's script runs with
// changes: the script, its file's content, the scripts section. "" for a
// source without one. A reload restarts a source whose digest changed.
func (c *Config) SourceScriptDigest(s SourceConfig) string {
	if s.Script == "" && s.ScriptFile == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%#v\n", s.Script, s.ScriptFile, c.Scripts)
	if s.ScriptFile != "" {
		data, _ := c.ReadFile(s.ScriptFile)
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SourceBuilder compiles source s's script that builds HL7 v2 messages
// from its documents (nil for a source of HL7 v2).
func (c *Config) SourceBuilder(s SourceConfig) (*script.Script, error) {
	if s.Script == "" && s.ScriptFile == "" {
		return nil, nil
	}
	e := c.ScriptEngine()
	if e == nil {
		return nil, errors.New("the scripts section has problems")
	}
	src, name := s.Script, "source "+s.Name+" script"
	switch {
	case s.Script != "" && s.ScriptFile != "":
		return nil, errors.New("a source takes script or script_file, not both")
	case s.ScriptFile != "":
		data, err := c.ReadFile(s.ScriptFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", s.ScriptFile, err)
		}
		src, name = string(data), s.ScriptFile
	}
	return e.Compile(name, script.Builder, src, false)
}
