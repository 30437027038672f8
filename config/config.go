package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/script"
	"github.com/hl7broker/hl7broker/transforms"
)

// Config is the whole broker configuration: one YAML file plus
// HL7BROKER_* environment overrides (HL7BROKER_NATS_URL for nats.url).
// docs/configuration.md documents every key.
type Config struct {
	DataDir string        `mapstructure:"data_dir"`
	NATS    NATSConfig    `mapstructure:"nats"`
	Admin   AdminConfig   `mapstructure:"admin"`
	History HistoryConfig `mapstructure:"history"`
	Tracing TracingConfig `mapstructure:"tracing"`
	Limits  LimitsConfig  `mapstructure:"limits"`
	// MemoryLimit is Go's soft memory limit: a size (512MiB), auto (three
	// quarters of a container's limit; the default) or off. GOMEMLIMIT in
	// the environment wins. Read at start.
	MemoryLimit  string              `mapstructure:"memory_limit"`
	Listeners    []ListenerConfig    `mapstructure:"listeners"`
	Sources      []SourceConfig      `mapstructure:"sources"`
	Scripts      ScriptsConfig       `mapstructure:"scripts"`
	Routes       []RouteConfig       `mapstructure:"routes"`
	Unrouted     UnroutedConfig      `mapstructure:"unrouted"`
	Destinations []DestinationConfig `mapstructure:"destinations"`
	Alerts       AlertsConfig        `mapstructure:"alerts"`

	file        string               // the config file, for problems' positions
	dir         string               // the config file's folder: files a config names are relative to it
	compiled    []*CompiledRoute     // by Validate: each route whose condition and steps compiled
	engine      *script.Engine       // by Validate: runs the config's scripts
	siteRules   map[string]SiteRules // by Validate: each listener's and source's rules, compiled
	engineTried bool
	// keyAt is where an entry was written, when that differs from where
	// it is ("listeners[2]" written as "sources[0]", type mllp).
	keyAt map[string]string
}

// NATSConfig chooses the embedded server (URL empty) or an external
// cluster, and how messages are stored.
type NATSConfig struct {
	URL             string        `mapstructure:"url"`   // comma-separated server URLs; empty: embedded
	Creds           string        `mapstructure:"creds"` // credentials file for an external cluster
	TLS             TLSFiles      `mapstructure:"tls"`
	Durability      string        `mapstructure:"durability" enum:"fsync,os"` // fsync | os
	Replicas        int           `mapstructure:"replicas"`
	History         time.Duration `mapstructure:"history"`
	HistoryMaxBytes int64         `mapstructure:"history_max_bytes"` // 0: no limit besides age
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
	StoreTimeout    time.Duration `mapstructure:"store_timeout"` // how long ingest waits for a PubAck
}

// TLSFiles name PEM files.
type TLSFiles struct {
	CAFile       string `mapstructure:"ca_file"`
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// ServerTLSFiles are the PEM files of a server that is not an MLLP
// listener (an HTTP source): its certificate and key, and the CAs whose
// client certificates it requires (mutual TLS).
type ServerTLSFiles struct {
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// Files are f as TLSFiles.
func (f ServerTLSFiles) Files() TLSFiles {
	return TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.ClientCAFile}
}

// AdminConfig is the admin HTTP server: /metrics, /healthz and /readyz
// open; /api/v1 behind bearer tokens.
type AdminConfig struct {
	Addr     string        `mapstructure:"addr"`
	TLS      TLSFiles      `mapstructure:"tls"` // cert_file and key_file: serve HTTPS
	Tokens   []TokenConfig `mapstructure:"tokens"`
	AuditAge time.Duration `mapstructure:"audit_max_age"` // HL7_AUDIT's max age; at least six years by default
	// NotReadyWhenFailing makes /readyz answer 503 while a destination's
	// attempts have failed, without a success, for this long (0: never:
	// readiness is this broker's own health), for load balancers that
	// should send to another broker meanwhile.
	NotReadyWhenFailing time.Duration `mapstructure:"not_ready_when_failing"`
	// SessionMax and SessionIdle end a console session that long after
	// sign-in, and after that long without a request. Sessions are kept in
	// the store: a restart keeps them, every broker of a cluster knows
	// them, and signing out ends them on every one.
	SessionMax  time.Duration `mapstructure:"session_max"`
	SessionIdle time.Duration `mapstructure:"session_idle"`
	// OIDC and LDAP let people sign in to the console as themselves,
	// their role from their groups; API tokens stay for machines.
	OIDC OIDCConfig `mapstructure:"oidc"`
	LDAP LDAPConfig `mapstructure:"ldap"`
}

// OIDCConfig is single sign-on with an OpenID Connect provider
// (authorization code flow with PKCE). Off while issuer is empty.
type OIDCConfig struct {
	Issuer       string `mapstructure:"issuer"` // the provider's issuer URL (its /.well-known/openid-configuration)
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret" secret:"ref"` // by reference only
	// RedirectURL is this console's callback as registered at the
	// provider: https://HOST:PORT/ui/oidc/callback.
	RedirectURL string `mapstructure:"redirect_url"`
	// GroupsClaim names the ID token's claim listing the person's groups
	// (default groups); Roles maps a group to a role. A person in no
	// mapped group is refused; in several, the highest role applies.
	GroupsClaim string            `mapstructure:"groups_claim"`
	Roles       map[string]string `mapstructure:"roles"`
	// Limits narrow what a group's people see and act on, as a token's
	// sources and destinations do (a lab analysts' group: sources:
	// [lab]). A person in any mapped group without limits is not limited.
	Limits map[string]GroupLimits `mapstructure:"limits"`
	// UserClaim names the claim the audit trail names the person by
	// (default preferred_username, then email, then sub).
	UserClaim string `mapstructure:"user_claim"`
	// Scopes asked for besides openid (default profile, email, groups).
	Scopes []string `mapstructure:"scopes"`
}

// GroupLimits are the listeners and sources, and the destinations, a
// group's people are limited to (empty: all).
type GroupLimits struct {
	Sources      []string `mapstructure:"sources"`
	Destinations []string `mapstructure:"destinations"`
}

// LDAPConfig is sign-in with a directory's password (LDAP or Active
// Directory): a bind as the service account finds the person, a bind as
// the person checks the password. Off while url is empty.
type LDAPConfig struct {
	URL          string `mapstructure:"url"` // ldaps://dc1.example.org:636, or ldap:// with start_tls
	StartTLS     bool   `mapstructure:"start_tls"`
	CAFile       string `mapstructure:"ca_file"` // a CA to trust for the directory's certificate
	BindDN       string `mapstructure:"bind_dn"`
	BindPassword string `mapstructure:"bind_password" secret:"ref"` // by reference only
	UserBase     string `mapstructure:"user_base"`
	// UserFilter finds the person; {username} stands for the name typed,
	// escaped (default (uid={username}); Active Directory:
	// (sAMAccountName={username})).
	UserFilter string `mapstructure:"user_filter"`
	// GroupAttribute is the person's attribute listing their groups
	// (default memberOf); Roles maps a group, by its DN or its first
	// RDN's value (CN), to a role.
	GroupAttribute string                 `mapstructure:"group_attribute"`
	Roles          map[string]string      `mapstructure:"roles"`
	Limits         map[string]GroupLimits `mapstructure:"limits"`  // as admin.oidc.limits
	Timeout        time.Duration          `mapstructure:"timeout"` // each directory call (default 10s)
}

// TokenConfig is one API token: a name (who, in the audit trail), a role,
// and where the token is (a file or an environment variable): never the
// token itself. Only its hash is kept in memory.
type TokenConfig struct {
	Name      string `mapstructure:"name"`
	Role      string `mapstructure:"role" enum:"viewer,operator,admin"`
	TokenFile string `mapstructure:"token_file"`
	TokenEnv  string `mapstructure:"token_env"`
	// Optional: a token whose file or variable is missing is left out
	// (with a warning at start) instead of stopping the broker: for a
	// config shared by machines that do not all have it, such as the
	// example's.
	Optional bool `mapstructure:"optional"`
	// Sources and Destinations limit what the token's holder sees and
	// acts on: messages received on these listeners or sources, dead
	// letters of these destinations, pausing these destinations (empty:
	// all). A lab analyst's token: sources: [lab].
	Sources      []string `mapstructure:"sources"`
	Destinations []string `mapstructure:"destinations"`
}

// TracingConfig is OpenTelemetry tracing: a trace per message, exported
// over OTLP/HTTP. Off by default.
type TracingConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Endpoint is the collector's OTLP/HTTP base URL (http://host:4318);
	// spans go to its /v1/traces.
	Endpoint string `mapstructure:"endpoint"`
	// SampleRatio is the share of messages traced, 0 to 1.
	SampleRatio float64 `mapstructure:"sample_ratio"`
	// ControlIDs lets spans carry MSH-10. Off: a control ID identifies a
	// message, and some senders put more in it than a counter.
	ControlIDs  bool   `mapstructure:"control_ids"`
	ServiceName string `mapstructure:"service_name"`
	CAFile      string `mapstructure:"ca_file"` // a CA to trust for an https endpoint
	// Headers go with every export (a collector's API key): values may
	// reference a secret, ${env:NAME} or ${file:PATH}.
	Headers map[string]string `mapstructure:"headers"`
}

// LimitsConfig bounds what senders can make the broker hold, across all
// listeners and sources.
type LimitsConfig struct {
	// FramesMemory bounds the bytes of MLLP frames being received on all
	// connections together (at least 4 × the largest max_message_bytes).
	FramesMemory int64 `mapstructure:"frames_memory"`
}

// SearchKey is one search key: the HL7 path its values are read at, and
// whether matching ignores case and accents (names: Nguyễn, NGUYEN and
// nguyen are one). In YAML a key is its path alone, or {path, fold}.
type SearchKey struct {
	Path string `mapstructure:"path"`
	Fold bool   `mapstructure:"fold"`
}

// searchKeyHook reads a search key written as its path alone.
func searchKeyHook(from, to reflect.Type, v any) (any, error) {
	if to == reflect.TypeFor[SearchKey]() && from.Kind() == reflect.String {
		return SearchKey{Path: v.(string)}, nil
	}
	return v, nil
}

// KeyPaths are the keys' paths by name; Folded the names of those that
// fold.
func (h HistoryConfig) KeyPaths() (paths map[string]string, folded []string) {
	paths = map[string]string{}
	for name, k := range h.SearchKeys {
		paths[name] = k.Path
		if k.Fold {
			folded = append(folded, name)
		}
	}
	slices.Sort(folded)
	return paths, folded
}

// HistoryConfig is each message's journey and the search index.
type HistoryConfig struct {
	Enabled bool `mapstructure:"enabled"` // journey events and the index; default true
	// SearchKeys are business keys indexed by name, each at an HL7 path
	// (mrn: PID-3.1, or family: {path: PID-5.1, fold: true}):
	// GET /api/v1/messages?key.mrn=...
	SearchKeys map[string]SearchKey `mapstructure:"search_keys"`
	// KeepCopies is how long a delivered copy stays in HL7_OUT, to be
	// shown and resent as it was sent (at least the duplicate window).
	KeepCopies time.Duration `mapstructure:"keep_copies"`
	DLQMaxAge  time.Duration `mapstructure:"dlq_max_age"` // HL7_DLQ's max age
	// ContentSearch indexes every message's words (SQLite FTS5) for
	// GET /api/v1/messages?text=...: a PHI index, off by default.
	ContentSearch bool `mapstructure:"content_search"`
}

// ListenerConfig is one MLLP listener.
type ListenerConfig struct {
	Name            string        `mapstructure:"name"`
	Addr            string        `mapstructure:"addr"`
	AckMode         string        `mapstructure:"ack_mode" enum:"auto,original,enhanced"` // auto | original | enhanced
	MaxMessageBytes int           `mapstructure:"max_message_bytes"`
	AcceptTypes     []string      `mapstructure:"accept_types"` // empty: all
	MaxConnections  int           `mapstructure:"max_connections"`
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`
	ReadTimeout     time.Duration `mapstructure:"read_timeout"`
	TLS             TLSFiles      `mapstructure:"tls"`
	// Charset names the messages' character set (HL7 table 0211 or an
	// alias), as a source's charset; empty: MSH-18.
	Charset string `mapstructure:"charset"`
	// Validation checks each message against its version's HL7
	// definitions: off; record (the default: stored, problems in its
	// journey); reject (AR with an ERR per problem, nothing stored).
	Validation string `mapstructure:"validation" enum:"off,record,reject"`
	// Profile is a conformance profile in the standard XML
	// (HL7v2xConformanceProfile), relative to the config's folder: its
	// usage, cardinality, lengths and tables are checked as validation
	// checks the standard, for the messages of its type and event.
	Profile string `mapstructure:"profile"`
	// Rules are the site's own rules, checked with validation.
	Rules []SiteRule `mapstructure:"rules"`

	maxBytesDefaulted bool // max_message_bytes left out: it may shrink to fit NATS's max_payload
}

// RouteConfig sends matching messages to destinations.
type RouteConfig struct {
	Name      string            `mapstructure:"name"`
	From      []string          `mapstructure:"from"` // listener names; empty: all
	When      WhenConfig        `mapstructure:"when"`
	Transform []transforms.Spec `mapstructure:"transform"` // docs/routing.md
	To        []string          `mapstructure:"to"`
}

// WhenConfig is a route's condition (docs/routing.md).
type WhenConfig = condition.When

// UnroutedConfig says what happens to a message no route matches; it is
// counted and logged either way and stays in HL7_IN's history.
type UnroutedConfig struct {
	To string `mapstructure:"to"` // a destination name; empty: drop
}

// DestinationConfig is one downstream system: the keys every type of
// destination takes, and in Options those of its type.
type DestinationConfig struct {
	Name       string `mapstructure:"name"`
	Type       string `mapstructure:"type" enum:"(registered destination types)"` // see DestinationType
	Encoding   string `mapstructure:"encoding" enum:"er7,json,fhir"`              // what is sent; default er7 (fhir for type fhir)
	Terminator string `mapstructure:"segment_terminator" enum:"cr,lf,crlf"`       // er7: default as received
	// JSONNames, with encoding json, adds a "names" object naming each
	// key used (PID.5: Patient Name) from the message's HL7 version.
	JSONNames bool `mapstructure:"json_names"`
	// FHIRBundle is the kind of Bundle encoding fhir makes: transaction
	// (default) or collection.
	FHIRBundle string `mapstructure:"fhir_bundle" enum:"transaction,collection"`
	// Charset is the stored messages' character set for encoding fhir
	// (HL7 table 0211 or an alias), over MSH-18; empty: MSH-18.
	Charset string `mapstructure:"charset"`
	// TimeZone is how HL7 times without an offset are read (encoding
	// fhir, and types that read times: postgres); default the broker's.
	TimeZone    string        `mapstructure:"time_zone"`
	Timeout     time.Duration `mapstructure:"timeout"`
	Ordering    string        `mapstructure:"ordering" enum:"fifo,parallel,key"` // fifo | parallel | key
	Concurrency int           `mapstructure:"concurrency"`
	PartitionBy string        `mapstructure:"partition_by"`
	Partitions  int           `mapstructure:"partitions"`
	Retry       RetryConfig   `mapstructure:"retry"`
	OnReject    string        `mapstructure:"on_reject" enum:"dead_letter,retry"` // dead_letter | retry
	TLS         TLSFiles      `mapstructure:"tls"`
	// Encoder makes the payload with a script or a template
	// (docs/scripts.md); nil: the encoding's.
	Encoder *EncoderConfig `mapstructure:"encoder"`

	// Options are the keys of the destination's type, as a pointer to the
	// struct its registration names (DestinationType.Options): decoded
	// from the same YAML mapping by Load; a config built in code sets it
	// (nil: the type's defaults).
	Options any `mapstructure:"-"`
	// Rest holds the keys that are not common while Load decodes them
	// into Options; empty after.
	Rest map[string]any `mapstructure:",remain"`

	zeros map[string]any // own keys written as 0 or false (explicitZeros)
}

// SSHLogin is how an SFTP source or destination logs in to its server.
type SSHLogin struct {
	Addr string `mapstructure:"addr"` // HOST:PORT
	User string `mapstructure:"user"`
	// Password is by reference only: ${env:NAME} or ${file:PATH}.
	Password                 string `mapstructure:"password" secret:"ref"`
	PrivateKeyFile           string `mapstructure:"private_key_file"`             // an unencrypted key, or password
	KnownHosts               string `mapstructure:"known_hosts"`                  // default ~/.ssh/known_hosts
	InsecureSkipHostKeyCheck bool   `mapstructure:"insecure_skip_host_key_check"` // a test server only
}

// OAuth2Config is the OAuth 2.0 client credentials grant (RFC 6749 4.4):
// the broker asks token_url for a token with its client ID and secret
// (by reference), and renews it before it expires.
type OAuth2Config struct {
	TokenURL     string   `mapstructure:"token_url" secret:"expand"`
	ClientID     string   `mapstructure:"client_id"`
	ClientSecret string   `mapstructure:"client_secret" secret:"ref"` // by reference only
	Scopes       []string `mapstructure:"scopes"`
}

// RetryConfig is a destination's retry schedule; the last backoff repeats.
// MaxAttempts 0 in a file (RetryForever here) retries until delivered;
// left out, it is RetryForever for fifo and key destinations and
// DefaultMaxAttempts for parallel ones.
type RetryConfig struct {
	MaxAttempts int             `mapstructure:"max_attempts"`
	Backoff     []time.Duration `mapstructure:"backoff"`
}

// defaults are the values of keys a file leaves out, all in this one
// table: top-level keys (each scalar one has a default, so that an
// HL7BROKER_* variable can override it), and the keys of every entry of
// a list under "listeners[].", "sources[]." and "destinations[].". A destination type's
// own keys get theirs from its registration (DestinationType.Defaults).
var defaults = map[string]any{
	"data_dir":               "./data",
	"nats.url":               "",
	"nats.creds":             "",
	"nats.durability":        "fsync",
	"nats.replicas":          1,
	"nats.history":           "168h",
	"nats.history_max_bytes": 0,
	"nats.duplicate_window":  "2m",
	"nats.store_timeout":     "5s",
	"admin.addr":             "127.0.0.1:8080",
	"admin.audit_max_age":    DefaultAuditAge,
	"admin.session_max":      8 * time.Hour,
	"admin.session_idle":     time.Hour,
	"history.enabled":        true,
	"history.keep_copies":    "24h",
	"history.dlq_max_age":    "720h",
	"unrouted.to":            "",
	"tracing.enabled":        false,
	"tracing.endpoint":       "http://127.0.0.1:4318",
	"tracing.sample_ratio":   1.0,
	"tracing.control_ids":    false,
	"tracing.service_name":   "hl7broker",
	"tracing.ca_file":        "",
	"limits.frames_memory":   DefaultFramesMemory,

	"listeners[].ack_mode":          "auto",
	"listeners[].validation":        "record",
	"sources[].validation":          "record",
	"listeners[].max_message_bytes": DefaultMaxMessageBytes,
	"listeners[].max_connections":   DefaultMaxConnections,
	"listeners[].idle_timeout":      DefaultIdleTimeout,

	"sources[].max_message_bytes": DefaultMaxMessageBytes,

	"destinations[].ordering":      "fifo",
	"destinations[].on_reject":     "dead_letter",
	"destinations[].retry.backoff": DefaultBackoff,
	"destinations[].encoding":      "er7",
	"destinations[].timeout":       30 * time.Second,
}

// Defaults that code elsewhere names.
const (
	// DefaultAuditAge keeps the audit trail six years (HIPAA keeps audit
	// documentation that long): 6 × 365.25 days.
	DefaultAuditAge        = 6 * 8766 * time.Hour
	DefaultMaxMessageBytes = 1 << 20
	// DefaultMaxConnections is a listener's bound on connections at once;
	// all listeners together are also bound by the process's file
	// descriptors, less a reserve for storage and admin.
	DefaultMaxConnections = 10_000
	// DefaultIdleTimeout closes a listener's connection with no message
	// for that long (the sender connects again for its next one);
	// idle_timeout: 0 written out keeps connections open for ever.
	DefaultIdleTimeout = time.Hour
	// DefaultFramesMemory bounds MLLP frames being received, all
	// connections together.
	DefaultFramesMemory = 128 << 20
	// NoTimeout is a timeout of 0 written out in the file: none.
	NoTimeout = -1
	// DefaultMaxAttempts is a parallel destination's when none is given.
	// An ordered (fifo or key) destination holds its line until delivered
	// (RetryForever): skipping a message would reorder its feed.
	DefaultMaxAttempts = 10
	// RetryForever is retry.max_attempts: 0 as written in a file: retry
	// until delivered or an operator acts (pause, purge). A rejection
	// (AR/AE) still goes by on_reject.
	RetryForever = -1
)

// DefaultBackoff is a destination's retry schedule when none is given.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}

// Load reads file, applies HL7BROKER_* environment overrides and
// defaults, and validates the result as a whole. Unknown keys are errors.
// On any problem it returns a *Error listing every one.
func Load(file string) (*Config, error) {
	v := viper.New()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	v.SetEnvPrefix("HL7BROKER")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for k, d := range defaults {
		if !strings.Contains(k, "[]") { // per-entry keys: ApplyDefaults
			v.SetDefault(k, d)
		}
	}
	if p := yamlProblem(file); p != nil {
		return nil, &Error{File: file, Problems: []Problem{*p}}
	}
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = decodeHooks
	})
	// A key that cannot be decoded does not hide the rest: what decoded
	// is validated too, and every problem is reported in one run.
	var problems []Problem
	if err != nil {
		problems = decodeProblems(err)
	}
	c.file, c.dir = file, filepath.Dir(file)
	pos := readPositions(file)
	problems = append(problems, c.decodeOptions(pos)...)
	c.restoreMapKeys(pos)
	problems = append(problems, c.expandSecrets()...)
	c.ApplyDefaults()
	problems = mergeProblems(problems, c.Validate())
	if len(problems) > 0 {
		return nil, NewError(file, problems)
	}
	return &c, nil
}

// decodeHooks turn YAML's strings into durations and lists, as for every
// key of the file.
var decodeHooks = mapstructure.ComposeDecodeHookFunc(
	mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","), transforms.SpecHook, searchKeyHook)

// decodeInto decodes m into out (a pointer to a struct of mapstructure
// keys) as Load decodes the file, each problem's key under key.
func decodeInto(key string, m map[string]any, out any) []Problem {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: out, ErrorUnused: true, WeaklyTypedInput: true, DecodeHook: decodeHooks})
	if err != nil {
		panic(err) // out is not a pointer: a programming error
	}
	if err := dec.Decode(m); err != nil {
		problems := decodeProblems(err)
		root := reflect.TypeOf(out).Elem().String() // how mapstructure names the struct itself
		for i := range problems {
			k := strings.TrimPrefix(strings.TrimPrefix(problems[i].Key, root), ".")
			problems[i].Key = strings.TrimSuffix(key+"."+k, ".")
		}
		return problems
	}
	return nil
}

// decodeOptions decodes each destination's and source's own keys into
// its type's struct, and reads each transform step, from the file's YAML
// (so that keys of maps, such as headers or a table, keep their case), or
// from what the first decoding left over.
func (c *Config) decodeOptions(pos *positions) []Problem {
	var problems []Problem
	// rest is entry key's keys that are not in common (as written).
	rest := func(key string, common reflect.Type, leftOver map[string]any) map[string]any {
		m := pos.mapping(key)
		if m == nil {
			return leftOver
		}
		for _, k := range topKeys(common) {
			delete(m, k)
		}
		return m
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		r := rest(fmt.Sprintf("destinations[%d]", i), reflect.TypeFor[DestinationConfig](), d.Rest)
		d.Rest = nil
		problems = append(problems, decodeDestinationOptions(i, d, r)...)
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		r := rest(fmt.Sprintf("sources[%d]", i), reflect.TypeFor[SourceConfig](), s.Rest)
		s.Rest = nil
		problems = append(problems, decodeSourceOptions(i, s, r)...)
	}
	if m := pos.mapping("scripts"); m != nil { // as written: table and map keys keep their case
		c.Scripts = ScriptsConfig{}
		problems = append(problems, decodeInto("scripts", m, &c.Scripts)...)
	}
	for i := range c.Routes {
		for j := range c.Routes[i].Transform {
			if m := pos.mapping(fmt.Sprintf("routes[%d].transform[%d]", i, j)); m != nil {
				c.Routes[i].Transform[j] = transforms.SpecFrom(m)
			}
		}
	}
	return problems
}

// topKeys are a struct's own mapstructure keys (not those of its fields).
func topKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// mergeProblems adds validation problems to decoding ones, leaving out
// those about a key that did not decode (its zero value would only add
// noise: "must be positive" after "cannot parse").
func mergeProblems(decoded, validated []Problem) []Problem {
	out := decoded
	for _, v := range validated {
		dup := false
		for _, d := range decoded {
			if d.Key != "" && (v.Key == d.Key || strings.HasPrefix(v.Key, d.Key+".") || strings.HasPrefix(v.Key, d.Key+"[")) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// yamlProblem reports a file that is not valid YAML, at the line where
// it stops being valid. The YAML parser names the line where the block
// around the problem starts (line 1 for a bad indentation on line 3), so
// the line is found by parsing ever longer beginnings of the file: the
// first line whose addition breaks it.
func yamlProblem(file string) *Problem {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil // viper reports it
	}
	var n yaml.Node
	err = yaml.Unmarshal(data, &n)
	if err == nil {
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
		msg = rest
	}
	p := &Problem{Message: "not valid YAML: " + msg}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 5000 {
		return p
	}
	for i := 1; i <= len(lines); i++ {
		var m yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[:i], "")), &m) != nil {
			p.Line, p.Column = i, 1
			break
		}
	}
	return p
}

// decodeProblems splits a decoding error into one problem per key:
// mapstructure lists them one a line, as "'routes[0].when.gt' cannot
// parse ..." and "'listeners[0]' has invalid keys: colour, size".
func decodeProblems(err error) []Problem {
	var problems []Problem
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		key, msg, ok := strings.Cut(strings.TrimPrefix(line, "'"), "' ")
		if !strings.HasPrefix(line, "'") || !ok {
			continue
		}
		if names, isUnknown := strings.CutPrefix(msg, "has invalid keys: "); isUnknown {
			for _, n := range strings.Split(names, ", ") {
				problems = append(problems, Problem{Key: strings.TrimPrefix(key+"."+n, "."), Message: "unknown key"})
			}
			continue
		}
		problems = append(problems, Problem{Key: key, Message: msg})
	}
	if len(problems) == 0 {
		problems = []Problem{{Message: strings.ReplaceAll(err.Error(), "\n", " ")}}
	}
	return problems
}

// restoreMapKeys reads what viper's decoding loses: a zero written out
// (idle_timeout: 0, retry.max_attempts: 0), which differs from a key left
// out. (Keys of maps whose keys are data, such as a transform's table or
// a destination's headers, keep their case because decodeOptions reads
// them from the file's YAML: viper lowercases every key it reads.)
func (c *Config) restoreMapKeys(pos *positions) {
	if pos == nil {
		return
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		// idle_timeout: 0 written out means none, not "left out".
		if n := pos.node(fmt.Sprintf("listeners[%d].idle_timeout", i)); n != nil && l.IdleTimeout == 0 {
			l.IdleTimeout = NoTimeout
		}
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		// max_attempts: 0 written out means forever, not "left out".
		if n := pos.node(fmt.Sprintf("destinations[%d].retry.max_attempts", i)); n != nil && d.Retry.MaxAttempts == 0 && n.Value == "0" {
			d.Retry.MaxAttempts = RetryForever
		}
	}
}

// expandSecrets replaces ${env:NAME} and ${file:PATH} references in the
// keys that may hold secrets: nats.url, tracing's, sources' passwords, and
// the keys of destination types tagged secret (expandTagged). A missing variable or
// file is a problem naming the key.
func (c *Config) expandSecrets() []Problem {
	var problems []Problem
	expand := func(key string, v *string) {
		out, err := secret.Expand(*v, c.dir)
		if err != nil {
			problems = append(problems, Problem{Key: key, Message: err.Error()})
			return
		}
		*v = out
	}
	expand("nats.url", &c.NATS.URL)
	expand("tracing.endpoint", &c.Tracing.Endpoint)
	for k, v := range c.Tracing.Headers {
		expand("tracing.headers."+k, &v)
		c.Tracing.Headers[k] = v
	}
	for i := range c.Admin.Tokens {
		expand(fmt.Sprintf("admin.tokens[%d].token_file", i), &c.Admin.Tokens[i].TokenFile)
	}
	password := func(key string, v *string) {
		if *v != "" && !secret.IsRef(*v) {
			problems = append(problems, Problem{Key: key,
				Message: "give it by reference, ${env:NAME} or ${file:PATH}: a secret is never written in the config"})
			return
		}
		expand(key, v)
	}
	for i, s := range c.Sources {
		if s.Options != nil {
			c.expandTagged(fmt.Sprintf("sources[%d]", i), reflect.ValueOf(s.Options).Elem(), expand, password)
		}
	}
	for i, d := range c.Destinations {
		if d.Options != nil {
			c.expandTagged(fmt.Sprintf("destinations[%d]", i), reflect.ValueOf(d.Options).Elem(), expand, password)
		}
	}
	c.expandTagged("admin.oidc", reflect.ValueOf(&c.Admin.OIDC).Elem(), expand, password)
	c.expandTagged("admin.ldap", reflect.ValueOf(&c.Admin.LDAP).Elem(), expand, password)
	for i := range c.Alerts.Notifiers {
		c.expandTagged(fmt.Sprintf("alerts.notifiers[%d]", i), reflect.ValueOf(&c.Alerts.Notifiers[i]).Elem(), expand, password)
	}
	return problems
}

// expandTagged expands the fields of a type's options that may hold a
// secret, by their tags: secret:"ref" must be a reference (password),
// secret:"expand" may hold references (a URL, header values).
func (c *Config) expandTagged(key string, s reflect.Value, expand, ref func(string, *string)) {
	for i := range s.NumField() {
		f, fv := s.Type().Field(i), s.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() {
			continue
		}
		at := key + "." + name
		if opts == "squash" {
			at = key
		}
		how := map[string]func(string, *string){"expand": expand, "ref": ref}[f.Tag.Get("secret")]
		switch {
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			c.expandTagged(at, fv, expand, ref)
		case how != nil && fv.Kind() == reflect.String:
			how(at, fv.Addr().Interface().(*string))
		case how != nil && fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.String:
			keys := fv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				v := fv.MapIndex(k).String()
				how(at+"."+k.String(), &v)
				fv.SetMapIndex(k, reflect.ValueOf(v))
			}
		}
	}
}

// ApplyDefaults fills the keys of each listener, source and destination that were
// left out (Load does; a Config built in code calls it before Validate).
func (c *Config) ApplyDefaults() {
	for i := range c.Sources { // a source of type mllp is a listener: its defaults are a listener's
		if c.Sources[i].Type == "mllp" {
			SourceTypeDefaults(&c.Sources[i])
		}
	}
	c.mllpSourcesAsListeners()
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.MaxMessageBytes == 0 { // left out (ApplyDefaults may run twice: keep what the first saw)
			l.maxBytesDefaulted = true
		}
		applyEntryDefaults("listeners[].", reflect.ValueOf(l).Elem())
	}
	for i := range c.Sources {
		applyEntryDefaults("sources[].", reflect.ValueOf(&c.Sources[i]).Elem())
		SourceTypeDefaults(&c.Sources[i])
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		applyEntryDefaults("destinations[].", reflect.ValueOf(d).Elem())
		if d.Retry.MaxAttempts == 0 {
			d.Retry.MaxAttempts = RetryForever
			if d.Ordering == "parallel" {
				d.Retry.MaxAttempts = DefaultMaxAttempts
			}
		}
		DestinationTypeDefaults(d)
	}
	c.defaultAlerts()
}

// applyEntryDefaults sets each zero field of entry (a struct) that the
// defaults table names under prefix, by its mapstructure key path.
func applyEntryDefaults(prefix string, entry reflect.Value) {
	for key, value := range defaults {
		path, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		f := fieldByKey(entry, strings.Split(path, "."))
		if f.IsValid() && f.IsZero() {
			f.Set(reflect.ValueOf(value).Convert(f.Type()))
		}
	}
}

// fieldByKey finds the field at a key path of mapstructure tags.
func fieldByKey(v reflect.Value, path []string) reflect.Value {
	for _, name := range path {
		found := reflect.Value{}
		for i := range v.NumField() {
			if strings.Split(v.Type().Field(i).Tag.Get("mapstructure"), ",")[0] == name {
				found = v.Field(i)
				break
			}
		}
		if !found.IsValid() {
			panic("config: the defaults table names no key " + name)
		}
		v = found
	}
	return v
}

// Problem is one thing wrong with a config, at a key path such as
// "routes[0].to[1]", and where that key stands in the file (0 when not
// known: a key left to its default points at its parent).
type Problem struct {
	Key          string
	Message      string
	Line, Column int
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d:%d: ", p.Line, p.Column)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// NewError places each problem in file (its line and column).
func NewError(file string, problems []Problem) *Error {
	pos := readPositions(file)
	for i := range problems {
		problems[i].Line, problems[i].Column = pos.find(problems[i].Key)
	}
	return &Error{File: file, Problems: problems}
}

// Error lists every problem found in a config file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s)", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Pipeline compiles route i's transform steps.
func (c *Config) Pipeline(i int) (transforms.Pipeline, []transforms.Problem) {
	return transforms.Compile(c.Routes[i].Transform, transforms.Options{Dir: c.dir, ReadFile: c.ReadFile, Scripts: c.ScriptEngine(), Name: "route " + c.Routes[i].Name})
}

// File is the file the config was loaded from ("" when built in code).
func (c *Config) File() string { return c.file }

// CompiledRoute is a route with its condition and transform steps
// compiled: what the router routes by.
type CompiledRoute struct {
	Name      string
	From      []string
	When      condition.Condition
	Transform transforms.Pipeline
	To        []string
}

// CompiledRoutes are the routes as Validate compiled them, once (Load
// validates). A config not validated since its routes changed is compiled
// now; an error then means a file a route names changed since validation.
func (c *Config) CompiledRoutes() ([]CompiledRoute, error) {
	out := make([]CompiledRoute, 0, len(c.Routes))
	if len(c.compiled) != len(c.Routes) {
		c.Validate()
	}
	for i, cr := range c.compiled {
		if cr == nil {
			return nil, fmt.Errorf("route %s: does not compile: run check", c.Routes[i].Name)
		}
		out = append(out, *cr)
	}
	return out, nil
}
