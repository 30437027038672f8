package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/internal/memory"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// nameRE: listener and destination names go into NATS subjects and
// consumer names, so they are lower-case letters, digits, - and _.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

var codeRE = regexp.MustCompile(`^[A-Z0-9]{1,7}$`)

// Validate checks the whole config and returns every problem found. It
// compiles each route's condition and transform steps on the way and keeps
// them for CompiledRoutes, so routes are compiled once.
func (c *Config) Validate() []Problem {
	var v validator
	c.validateNATS(&v)
	if c.Admin.Addr != "" {
		v.addr("admin.addr", c.Admin.Addr)
	}
	c.validateAdmin(&v)
	c.validateHistory(&v)
	c.validateTracing(&v)
	listeners := v.names("listeners", len(c.Listeners), func(i int) string { return c.Listeners[i].Name })
	destinations := v.names("destinations", len(c.Destinations), func(i int) string { return c.Destinations[i].Name })
	c.validateSources(&v, listeners)
	if len(c.Listeners) == 0 && len(c.Sources) == 0 {
		v.add("listeners", "at least one listener or source is needed")
	}
	origins := c.originSet()
	c.validateAlerts(&v, origins, destinations)
	addrs := map[string]string{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		if v.addr(key+".addr", l.Addr) && !strings.HasSuffix(l.Addr, ":0") { // port 0: any free port
			if other, dup := addrs[l.Addr]; dup {
				v.add(key+".addr", "%q is also the address of %s", l.Addr, other)
			}
			addrs[l.Addr] = key
		}
		v.oneOf(key+".ack_mode", l.AckMode, enumOf(l, "AckMode")...)
		v.intake(key, l.MaxMessageBytes, l.AcceptTypes)
		c.checkProfile(&v, key, l.Profile)
		c.setSiteRules(l.Name, c.compileSiteRules(&v, key, l.Rules))
		if _, err := hl7.LookupCharset(l.Charset); err != nil {
			v.add(key+".charset", "%s", strings.TrimPrefix(err.Error(), "hl7: "))
		}
		if l.MaxConnections < 0 || (l.IdleTimeout < 0 && l.IdleTimeout != NoTimeout) || l.ReadTimeout < 0 {
			v.add(key, "max_connections, idle_timeout and read_timeout must not be negative")
		}
		v.serverTLS(key+".tls", l.TLS)
	}
	if c.Limits.FramesMemory < 0 {
		v.add("limits.frames_memory", "must not be negative")
	}
	if m := c.MemoryLimit; m != "" && m != "auto" && m != "off" {
		if n, err := memory.ParseSize(m); err != nil {
			v.add("memory_limit", "%v", err)
		} else if n < memory.MinLimit {
			v.add("memory_limit", "%s is below %d MiB: the collector would run without pause (what the broker keeps live under load is about 135 MiB)", m, memory.MinLimit>>20)
		}
	}
	c.engine, c.engineTried = nil, false
	c.validateScripts(&v)
	compiled := make([]*CompiledRoute, len(c.Routes))
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			v.add(key+".name", "a route needs a name")
		}
		for j, from := range r.From {
			if !origins[from] {
				v.add(fmt.Sprintf("%s.from[%d]", key, j), "no listener or source is named %q", from)
			}
		}
		when, wproblems := condition.CompileWith(r.When, condition.Options{Scripts: c.ScriptEngine(), ReadFile: c.ReadFile, Name: "route " + r.Name + " when"})
		for _, p := range wproblems {
			v.add(key+".when."+p.Key, "%s", p.Message)
		}
		for j, l := range r.When.Listener {
			if !origins[l] {
				v.add(fmt.Sprintf("%s.when.listener[%d]", key, j), "no listener or source is named %q", l)
			}
		}
		if why := c.neverMatches(r); why != "" {
			v.add(key, "this route can never match: %s", why)
		}
		pipeline, tproblems := c.Pipeline(i)
		for _, p := range tproblems {
			v.add(strings.TrimSuffix(key+".transform"+p.Key, "."), "%s", p.Message)
		}
		if len(wproblems) == 0 && len(tproblems) == 0 {
			compiled[i] = &CompiledRoute{Name: r.Name, From: r.From, When: when, Transform: pipeline, To: r.To}
		}
		if len(r.To) == 0 {
			v.add(key+".to", "a route needs at least one destination")
		}
		for j, to := range r.To {
			if !destinations[to] {
				v.add(fmt.Sprintf("%s.to[%d]", key, j), "no destination is named %q", to)
			}
		}
	}
	if c.Unrouted.To != "" && !destinations[c.Unrouted.To] {
		v.add("unrouted.to", "no destination is named %q", c.Unrouted.To)
	}
	for i, d := range c.Destinations {
		c.validateDestination(&v, fmt.Sprintf("destinations[%d]", i), d)
	}
	c.compiled = compiled
	return c.rewriteKeys(v.problems)
}

func (c *Config) validateNATS(v *validator) {
	n := c.NATS
	if n.URL == "" && c.DataDir == "" {
		v.add("data_dir", "the embedded NATS server needs a data_dir")
	}
	for i, u := range strings.Split(n.URL, ",") {
		u = strings.TrimSpace(u)
		if n.URL == "" {
			break
		}
		if u == "" {
			v.add("nats.url", "server URL %d is empty", i+1)
		} else if p, err := url.Parse(u); err != nil || p.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
			v.add("nats.url", "server URL %d, %s, is not a nats://, tls://, ws:// or wss:// URL with a host", i+1, secret.URL(u))
		}
	}
	if n.URL == "" && (n.Creds != "" || n.TLS != (TLSFiles{})) {
		v.add("nats", "creds and tls are for an external cluster: set nats.url too")
	}
	v.oneOf("nats.durability", n.Durability, enumOf(n, "Durability")...)
	if n.Replicas < 1 || n.Replicas > 5 {
		v.add("nats.replicas", "%d is outside 1 to 5", n.Replicas)
	}
	if n.URL == "" && n.Replicas > 1 {
		v.add("nats.replicas", "the embedded server is one node: replicas must be 1")
	}
	if n.History <= 0 {
		v.add("nats.history", "must be a positive duration such as 168h")
	}
	if n.DuplicateWindow <= 0 || (n.History > 0 && n.DuplicateWindow > n.History) {
		v.add("nats.duplicate_window", "must be a positive duration no longer than nats.history")
	}
	if n.StoreTimeout <= 0 {
		v.add("nats.store_timeout", "must be a positive duration such as 5s")
	}
	if n.HistoryMaxBytes < 0 {
		v.add("nats.history_max_bytes", "must not be negative")
	}
	v.fileExists("nats.creds", n.Creds)
	v.fileExists("nats.tls.ca_file", n.TLS.CAFile)
	v.fileExists("nats.tls.cert_file", n.TLS.CertFile)
	v.fileExists("nats.tls.key_file", n.TLS.KeyFile)
}

func (c *Config) validateDestination(v *validator, key string, d DestinationConfig) {
	c.checkDestinationType(v, key, d)
	c.validateEncoder(v, key, d)
	switch d.Ordering {
	case "fifo":
	case "parallel":
		if d.Concurrency < 1 {
			v.add(key+".concurrency", "parallel ordering needs a concurrency of at least 1")
		}
	case "key":
		if p, err := hl7.ParsePath(d.PartitionBy); err != nil || p.Field == 0 {
			v.add(key+".partition_by", "key ordering needs a field path such as PID-3.1")
		}
		if d.Partitions < 2 || d.Partitions > 256 {
			v.add(key+".partitions", "key ordering needs 2 to 256 partitions, not %d", d.Partitions)
		}
	default:
		v.add(key+".ordering", "%q is not one of %s", d.Ordering, strings.Join(enumOf(d, "Ordering"), ", "))
	}
	if d.Retry.MaxAttempts < RetryForever {
		v.add(key+".retry.max_attempts", "must be 0 (until delivered) or a number of attempts")
	}
	for j, b := range d.Retry.Backoff {
		if b <= 0 {
			v.add(fmt.Sprintf("%s.retry.backoff[%d]", key, j), "must be a positive duration")
		}
	}
	v.oneOf(key+".on_reject", d.OnReject, enumOf(d, "OnReject")...)
	v.oneOf(key+".encoding", d.Encoding, enumOf(d, "Encoding")...)
	if d.Terminator != "" {
		v.oneOf(key+".segment_terminator", d.Terminator, enumOf(d, "Terminator")...)
	}
	if (d.Encoding == "json" || d.Encoding == "fhir") && d.Terminator != "" {
		v.add(key+".segment_terminator", "applies to er7, not %s", d.Encoding)
	}
	if d.JSONNames && d.Encoding != "json" {
		v.add(key+".json_names", "applies to encoding json, not %s", cmp.Or(d.Encoding, "er7"))
	}
	if d.FHIRBundle != "" {
		v.oneOf(key+".fhir_bundle", d.FHIRBundle, enumOf(d, "FHIRBundle")...)
		if d.Encoding != "fhir" {
			v.add(key+".fhir_bundle", "applies to encoding fhir, not %s", d.Encoding)
		}
	}
	if d.Charset != "" {
		if d.Encoding != "fhir" {
			v.add(key+".charset", "applies to encoding fhir, not %s", d.Encoding)
		} else if _, err := hl7.LookupCharset(d.Charset); err != nil {
			v.add(key+".charset", "%s", strings.TrimPrefix(err.Error(), "hl7: "))
		}
	}
	if d.TimeZone != "" {
		if t, _ := LookupDestinationType(d.Type); d.Encoding != "fhir" && !t.ReadsTimes {
			v.add(key+".time_zone", "applies to encoding fhir, not %s", d.Encoding)
		} else if _, err := LoadZone(d.TimeZone); err != nil {
			v.add(key+".time_zone", "%q is not a time zone name such as America/Chicago", d.TimeZone)
		}
	}
	if d.Timeout <= 0 {
		v.add(key+".timeout", "must be a positive duration")
	}
	v.fileExists(key+".tls.ca_file", d.TLS.CAFile)
	v.fileExists(key+".tls.cert_file", d.TLS.CertFile)
	v.fileExists(key+".tls.key_file", d.TLS.KeyFile)
	if d.TLS.ClientCAFile != "" {
		v.add(key+".tls.client_ca_file", "is for servers (listeners, sources, admin): a destination is a client")
	}
}

// validator collects problems.
type validator struct{ problems []Problem }

// intake checks what a listener or source (at key) takes in.
func (v *validator) intake(key string, maxMessageBytes int, acceptTypes []string) {
	if maxMessageBytes < 1024 || maxMessageBytes > 64<<20 {
		v.add(key+".max_message_bytes", "%d is outside 1024 to 67108864", maxMessageBytes)
	}
	for j, t := range acceptTypes {
		if !codeRE.MatchString(t) {
			v.add(fmt.Sprintf("%s.accept_types[%d]", key, j), "%q is not a message type such as ADT", t)
		}
	}
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// names checks the names of a list's entries and returns the valid ones.
func (v *validator) names(list string, n int, name func(int) string) map[string]bool {
	seen := map[string]bool{}
	for i := range n {
		nm, key := name(i), fmt.Sprintf("%s[%d].name", list, i)
		switch {
		case !nameRE.MatchString(nm):
			v.add(key, "%q must be 1 to 64 lower-case letters, digits, - or _", nm)
		case seen[nm]:
			v.add(key, "%q is used twice", nm)
		}
		seen[nm] = true
	}
	return seen
}

func (v *validator) addr(key, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		v.add(key, "%q is not HOST:PORT", addr)
		return false
	}
	return true
}

// enumOf is the allowed values of a field of the struct value, from its
// enum tag: the one place they are written, read by validation and by the
// schema alike.
func enumOf(value any, field string) []string {
	f, ok := reflect.TypeOf(value).FieldByName(field)
	if !ok || f.Tag.Get("enum") == "" {
		panic("config: no enum tag on " + field)
	}
	return strings.Split(f.Tag.Get("enum"), ",")
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) fileExists(key, file string) {
	if file == "" {
		return
	}
	if _, err := os.Stat(file); err != nil {
		v.add(key, "cannot read %s", file)
	}
}

func (v *validator) serverTLS(key string, t TLSFiles) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add(key, "cert_file and key_file go together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		v.add(key+".client_ca_file", "mutual TLS needs cert_file and key_file too")
	}
	v.fileExists(key+".cert_file", t.CertFile)
	v.fileExists(key+".key_file", t.KeyFile)
	v.fileExists(key+".client_ca_file", t.ClientCAFile)
}

// neverMatches says why route r cannot match any message its listeners
// accept, or "": every listener it takes from accepts only types its
// when.type excludes.
func (c *Config) neverMatches(r RouteConfig) string {
	if len(r.When.Type) == 0 {
		return ""
	}
	from := r.From
	if len(from) == 0 {
		from = c.Origins()
	}
	for _, s := range c.Sources {
		if slices.Contains(from, s.Name) && s.acceptsAny(r.When.Type) {
			return ""
		}
	}
	for _, l := range c.Listeners {
		if !slices.Contains(from, l.Name) {
			continue
		}
		if len(l.AcceptTypes) == 0 {
			return ""
		}
		for _, t := range r.When.Type {
			if slices.Contains(l.AcceptTypes, t) {
				return ""
			}
		}
	}
	return fmt.Sprintf("its listeners and sources accept none of the types %v", r.When.Type)
}

var searchKeyRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// MinTokenLength: a shorter API token is refused as guessable.
const MinTokenLength = 16

func (c *Config) validateAdmin(v *validator) {
	v.serverTLS("admin.tls", c.Admin.TLS)
	if c.Admin.SessionMax < 0 || c.Admin.SessionIdle < 0 {
		v.add("admin", "session_max and session_idle must not be negative")
	} else if c.Admin.SessionMax > 0 && c.Admin.SessionIdle > c.Admin.SessionMax {
		v.add("admin.session_idle", "is longer than session_max (%s): a session ends at session_max anyway", c.Admin.SessionMax)
	}
	if c.Admin.AuditAge < 0 {
		v.add("admin.audit_max_age", "must not be negative")
	}
	c.validateSignIn(v)
	v.names("admin.tokens", len(c.Admin.Tokens), func(i int) string { return c.Admin.Tokens[i].Name })
	for i, t := range c.Admin.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		v.oneOf(key+".role", t.Role, enumOf(t, "Role")...)
		c.validateToken(v, key, t)
		for j, s := range t.Sources {
			if !slices.Contains(c.Origins(), s) {
				v.add(fmt.Sprintf("%s.sources[%d]", key, j), "no listener or source is named %q", s)
			}
		}
		for j, d := range t.Destinations {
			if _, ok := c.Destination(d); !ok {
				v.add(fmt.Sprintf("%s.destinations[%d]", key, j), "no destination is named %q", d)
			}
		}
	}
}

// validateSignIn checks admin.oidc and admin.ldap, when set.
func (c *Config) validateSignIn(v *validator) {
	roles := func(key string, m map[string]string) {
		if len(m) == 0 {
			v.add(key, "map at least one group to a role (viewer, operator or admin): nobody could sign in")
		}
		for _, g := range slices.Sorted(maps.Keys(m)) {
			v.oneOf(key+"."+g, m[g], "viewer", "operator", "admin")
		}
	}
	limits := func(key string, m map[string]GroupLimits, roles map[string]string) {
		for _, g := range slices.Sorted(maps.Keys(m)) {
			if _, ok := roles[g]; !ok {
				v.add(key+"."+g, "%q has no role in roles: limits are for groups that have one", g)
			}
			for j, s := range m[g].Sources {
				if !slices.Contains(c.Origins(), s) {
					v.add(fmt.Sprintf("%s.%s.sources[%d]", key, g, j), "no listener or source is named %q", s)
				}
			}
			for j, d := range m[g].Destinations {
				if _, ok := c.Destination(d); !ok {
					v.add(fmt.Sprintf("%s.%s.destinations[%d]", key, g, j), "no destination is named %q", d)
				}
			}
		}
	}
	if o := c.Admin.OIDC; o.Issuer != "" || o.ClientID != "" {
		for _, k := range []struct{ key, value string }{{"issuer", o.Issuer}, {"client_id", o.ClientID}, {"redirect_url", o.RedirectURL}} {
			if k.value == "" {
				v.add("admin.oidc."+k.key, "single sign-on needs it")
			}
		}
		for _, k := range []struct{ key, value string }{{"issuer", o.Issuer}, {"redirect_url", o.RedirectURL}} {
			if u, err := url.Parse(k.value); k.value != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
				v.add("admin.oidc."+k.key, "%s is not an http or https URL", secret.URL(k.value))
			}
		}
		if u, err := url.Parse(o.RedirectURL); err == nil && o.RedirectURL != "" && u.Path != "/ui/oidc/callback" {
			v.add("admin.oidc.redirect_url", "the console's callback is the path /ui/oidc/callback, not %q", u.Path)
		}
		roles("admin.oidc.roles", o.Roles)
		limits("admin.oidc.limits", o.Limits, o.Roles)
	}
	if l := c.Admin.LDAP; l.URL != "" {
		if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
			v.add("admin.ldap.url", "%s is not an ldap:// or ldaps:// URL", secret.URL(l.URL))
		}
		if l.UserBase == "" {
			v.add("admin.ldap.user_base", "give the subtree where people are found")
		}
		if l.UserFilter != "" && !strings.Contains(l.UserFilter, "{username}") {
			v.add("admin.ldap.user_filter", "must contain {username}, where the name typed goes")
		}
		if (l.BindDN == "") != (l.BindPassword == "") {
			v.add("admin.ldap", "give bind_dn and bind_password together (or neither, for a directory that lets anyone search)")
		}
		if l.CAFile != "" {
			v.fileExists("admin.ldap.ca_file", c.LDAPCAFile())
		}
		roles("admin.ldap.roles", l.Roles)
		limits("admin.ldap.limits", l.Limits, l.Roles)
	}
}

// ssh checks the keys an SFTP source or destination logs in with.
func (v *validator) ssh(key string, s SSHLogin) {
	v.addr(key+".addr", s.Addr)
	if s.User == "" {
		v.add(key+".user", "an sftp server needs the user to log in as")
	}
	if s.Password == "" && s.PrivateKeyFile == "" {
		v.add(key, "give private_key_file or password (by reference) to log in with")
	}
}

// validateToken checks that a token (admin's or an HTTP source's) is
// given one way and can be read, without printing it.
func (c *Config) validateToken(v *validator, key string, t TokenConfig) {
	if (t.TokenFile == "") == (t.TokenEnv == "") {
		v.add(key, "give the token by token_file or token_env (one of them)")
		return
	}
	if _, err := c.ReadToken(t); err != nil && !(t.Optional && errors.Is(err, ErrTokenMissing)) {
		v.add(key, "%s", err.Error())
	}
}

// ErrTokenMissing: a token's file does not exist, or its variable is not
// set.
var ErrTokenMissing = errors.New("token missing")

// ReadToken reads a token from its file or environment variable. Its
// errors name where it was looked for, never the token.
func (c *Config) ReadToken(t TokenConfig) (string, error) {
	var tok string
	if t.TokenEnv != "" {
		tok = os.Getenv(t.TokenEnv)
		if tok == "" {
			return "", fmt.Errorf("environment variable %s is not set (%w)", t.TokenEnv, ErrTokenMissing)
		}
	} else {
		name := t.TokenFile
		if !filepath.IsAbs(name) {
			name = filepath.Join(c.dir, name)
		}
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("token_file: %w (%w)", err, ErrTokenMissing)
		} else if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		tok = string(b)
	}
	tok = strings.TrimSpace(tok)
	if len(tok) < MinTokenLength {
		return "", fmt.Errorf("the token is shorter than %d characters", MinTokenLength)
	}
	return tok, nil
}

func (c *Config) validateTracing(v *validator) {
	t := c.Tracing
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.add("tracing.sample_ratio", "%g is outside 0 to 1", t.SampleRatio)
	}
	if !t.Enabled {
		return
	}
	if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("tracing.endpoint", "%q is not an http:// or https:// URL such as http://127.0.0.1:4318", secret.URL(t.Endpoint))
	}
	if t.CAFile != "" {
		v.fileExists("tracing.ca_file", c.TracingCAFile())
	}
}

// checkProfile checks that a listener's or source's profile (at key)
// can be read and parsed.
func (c *Config) checkProfile(v *validator, key, file string) {
	if file == "" {
		return
	}
	if _, err := c.LoadProfile(file); err != nil {
		v.add(key+".profile", "%s", err.Error())
	}
}

// LoadProfile reads a conformance profile named by a listener's or
// source's profile key, relative to the config's folder; nil for "".
func (c *Config) LoadProfile(file string) (*spec.Profile, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(c.path(file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return spec.ParseProfile(f)
}

// LDAPCAFile is admin.ldap.ca_file, relative to the config file's folder.
func (c *Config) LDAPCAFile() string { return c.path(c.Admin.LDAP.CAFile) }

// TracingCAFile is tracing.ca_file, relative to the config file's folder.
func (c *Config) TracingCAFile() string {
	if f := c.Tracing.CAFile; f != "" && !filepath.IsAbs(f) {
		return filepath.Join(c.dir, f)
	}
	return c.Tracing.CAFile
}

func (c *Config) validateHistory(v *validator) {
	for name, k := range c.History.SearchKeys {
		key := "history.search_keys." + name
		if !searchKeyRE.MatchString(name) {
			v.add(key, "a search key's name is lower-case letters, digits and _ (up to 32)")
		}
		if _, err := hl7.ParsePath(k.Path); err != nil {
			v.add(key, "%s", err.Error())
		}
	}
	if c.History.KeepCopies < 0 || c.History.DLQMaxAge < 0 {
		v.add("history", "keep_copies and dlq_max_age must not be negative")
	}
}

// LoadZone is a time_zone key's zone: the broker's own when empty.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
}
