package config

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

// SourceConfig is one source of messages other than an MLLP listener
// (top-level "sources:"). A source's name is also the name routes and
// the message history know it by, like a listener's: the two share one
// namespace.
type SourceConfig struct {
	Name            string   `mapstructure:"name"`
	Type            string   `mapstructure:"type" enum:"file,http,sftp"`
	MaxMessageBytes int      `mapstructure:"max_message_bytes"`
	AcceptTypes     []string `mapstructure:"accept_types"` // empty: all
	// Charset names the files' character set (HL7 table 0211 or an alias);
	// empty: MSH-18 when it names one. Bytes are stored as they are; a
	// mismatch is logged (where, never what) and counted.
	Charset string `mapstructure:"charset"`

	// type file and sftp
	Dir       string        `mapstructure:"dir"`       // the folder watched (sftp: on the server)
	Glob      string        `mapstructure:"glob"`      // which names are read; default *
	Recursive bool          `mapstructure:"recursive"` // also the folders under dir
	DoneDir   string        `mapstructure:"done_dir"`  // default: "done" beside dir
	ErrorDir  string        `mapstructure:"error_dir"` // default: "error" beside dir
	OnDone    string        `mapstructure:"on_done" enum:"move,delete"`
	StableFor time.Duration `mapstructure:"stable_for"` // a file is read once unchanged this long
	Poll      time.Duration `mapstructure:"poll"`       // how often dir is listed

	// type sftp (with addr and the keys of type file)
	User                     string `mapstructure:"user"`
	Password                 string `mapstructure:"password"`                     // by reference only
	PrivateKeyFile           string `mapstructure:"private_key_file"`             // an unencrypted key, or password
	KnownHosts               string `mapstructure:"known_hosts"`                  // default ~/.ssh/known_hosts
	InsecureSkipHostKeyCheck bool   `mapstructure:"insecure_skip_host_key_check"` // a test server only
	// MoveTo says where done_dir and error_dir are: on the server
	// (default: "done" and "error" beside dir there), or local folders
	// (both must be given) the files are copied to before they are
	// removed from the server.
	MoveTo string `mapstructure:"move_to" enum:"server,local"`

	// type http (and sftp: the server's HOST:PORT)
	Addr         string `mapstructure:"addr"`           // HOST:PORT
	Path         string `mapstructure:"path"`           // default /
	MaxBodyBytes int    `mapstructure:"max_body_bytes"` // a request's body (one message or a batch)
	// MaxRequests bounds the requests handled at once; more are answered
	// 503 with Retry-After before their body is read. With max_body_bytes
	// it bounds the memory requests can hold.
	MaxRequests int                 `mapstructure:"max_requests"`
	TLS         TLSFiles            `mapstructure:"tls"`
	Tokens      []SourceTokenConfig `mapstructure:"tokens"` // bearer tokens a sender must show
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

// Defaults of a file source; the table in config.go holds them.
const (
	DefaultSourceGlob      = "*"
	DefaultSourceStableFor = time.Second
	DefaultSourcePoll      = time.Second
)

// FileDirs are a file source's done and error folders, defaults applied:
// "done" and "error" beside dir (an sftp source's on its server, with
// move_to: server).
func (s SourceConfig) FileDirs() (done, failed string) {
	dirOf, join, clean := filepath.Dir, filepath.Join, filepath.Clean
	if s.Remote() {
		dirOf, join, clean = path.Dir, path.Join, path.Clean
	}
	parent := dirOf(clean(s.Dir))
	done, failed = s.DoneDir, s.ErrorDir
	if done == "" {
		done = join(parent, "done")
	}
	if failed == "" {
		failed = join(parent, "error")
	}
	return done, failed
}

// Remote says whether dir, done_dir and error_dir are on an SFTP server.
func (s SourceConfig) Remote() bool { return s.Type == "sftp" && s.MoveTo != "local" }

// Listener is the ingest settings of a source, in a listener's shape:
// ingest treats both alike.
func (s SourceConfig) Listener() ListenerConfig {
	return ListenerConfig{Name: s.Name, MaxMessageBytes: s.MaxMessageBytes, AcceptTypes: s.AcceptTypes, AckMode: "original"}
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
		v.oneOf(key+".type", s.Type, enumOf(s, "Type")...)
		v.intake(key, s.MaxMessageBytes, s.AcceptTypes)
		if _, err := hl7.LookupCharset(s.Charset); err != nil {
			v.add(key+".charset", "%s", strings.TrimPrefix(err.Error(), "hl7: "))
		}
		if s.Type == "http" {
			c.validateHTTPSource(v, key, s)
		}
		if s.Type == "sftp" {
			v.ssh(key, SSHLogin{Addr: s.Addr, User: s.User, Password: s.Password, PrivateKeyFile: s.PrivateKeyFile})
			v.oneOf(key+".move_to", s.MoveTo, enumOf(s, "MoveTo")...)
			if s.MoveTo == "local" && s.OnDone == "move" && (s.DoneDir == "" || s.ErrorDir == "") {
				v.add(key, "with move_to: local, give done_dir and error_dir: the local folders files are copied to")
			} else if s.MoveTo == "local" && s.ErrorDir == "" {
				v.add(key+".error_dir", "with move_to: local, give error_dir: the local folder refused files are copied to")
			}
		}
		if s.Type != "file" && s.Type != "sftp" {
			continue
		}
		if s.Dir == "" {
			v.add(key+".dir", "%s source needs the folder it watches", map[string]string{"file": "a file", "sftp": "an sftp"}[s.Type])
			continue
		}
		if _, err := filepath.Match(s.Glob, "x"); err != nil {
			v.add(key+".glob", "%q is not a file name pattern", s.Glob)
		}
		v.oneOf(key+".on_done", s.OnDone, enumOf(s, "OnDone")...)
		if s.StableFor < 0 || s.Poll <= 0 {
			v.add(key, "stable_for must not be negative and poll must be positive")
		}
		done, failed := s.FileDirs()
		dir := filepath.Clean(s.Dir)
		for _, d := range []struct{ key, path string }{{"done_dir", done}, {"error_dir", failed}} {
			if s.Type == "sftp" && !s.Remote() {
				break // local folders: never the server's
			}
			if rel, err := filepath.Rel(dir, filepath.Clean(d.path)); err == nil && (rel == "." || s.Recursive && !strings.HasPrefix(rel, "..")) {
				v.add(key+"."+d.key, "%s is inside the watched folder: its files would be read again", d.path)
			}
		}
		if s.OnDone == "move" && filepath.Clean(done) == filepath.Clean(failed) {
			v.add(key+".error_dir", "done_dir and error_dir must differ")
		}
	}
	return names
}

func (c *Config) validateHTTPSource(v *validator, key string, s SourceConfig) {
	v.addr(key+".addr", s.Addr)
	if !strings.HasPrefix(s.Path, "/") {
		v.add(key+".path", "%q must start with /", s.Path)
	}
	if s.MaxBodyBytes < s.MaxMessageBytes {
		v.add(key+".max_body_bytes", "%d is less than max_message_bytes (%d)", s.MaxBodyBytes, s.MaxMessageBytes)
	}
	if s.MaxRequests < 1 {
		v.add(key+".max_requests", "must be at least 1")
	}
	v.serverTLS(key+".tls", s.TLS)
	if len(s.Tokens) == 0 {
		v.add(key+".tokens", "an http source needs at least one token: senders show it as a bearer token")
	}
	v.names(key+".tokens", len(s.Tokens), func(j int) string { return s.Tokens[j].Name })
	for j, t := range s.Tokens {
		c.validateToken(v, fmt.Sprintf("%s.tokens[%d]", key, j), TokenConfig{Name: t.Name, TokenFile: t.TokenFile, TokenEnv: t.TokenEnv})
	}
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
