package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileSourceNeedsOnlyNameTypeAndDir(t *testing.T) {
	c, err := config.Load(writeConfig(t, `
sources: [{name: labdrop, type: file, dir: /srv/hl7/inbox}]
destinations: [{name: d, type: file, dir: /tmp/x}]
routes: [{name: r, from: [labdrop], to: [d]}]
`))
	require.NoError(t, err, "a source alone, without listeners, is a valid config")
	s := c.Sources[0]
	o := config.SourceOptionsOf[ingest.FolderOptions](s)
	assert.Equal(t, "*", o.Glob)
	assert.Equal(t, "move", o.OnDone)
	assert.Equal(t, time.Second, o.StableFor)
	assert.Equal(t, time.Second, o.Poll)
	assert.Equal(t, config.DefaultMaxMessageBytes, s.MaxMessageBytes)
	done, failed := ingest.FolderOf(s).FileDirs()
	assert.Equal(t, filepath.FromSlash("/srv/hl7/done"), done, "done/ beside dir")
	assert.Equal(t, filepath.FromSlash("/srv/hl7/error"), failed, "error/ beside dir")
	assert.Equal(t, []string{"labdrop"}, c.Origins())
}

func TestSourceProblems(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0"}]
sources:
  - {name: adt, type: file, dir: /in}
  - {name: nodir, type: file}
  - {name: inside, type: file, dir: /in2, recursive: true, done_dir: /in2/done, on_done: keep, charset: klingon}
  - {name: what, type: carrier-pigeon, dir: /in3}
destinations: [{name: d, type: file, dir: /tmp/x}]
routes: [{name: r, from: [nosuch], to: [d]}]
`))
	assert.Contains(t, got["sources[0].name"], "also a listener's name")
	assert.Contains(t, got["sources[1].dir"], "needs the folder")
	assert.Contains(t, got["sources[2].done_dir"], "inside the watched folder")
	assert.Contains(t, got["sources[2].on_done"], `"keep" is not one of move, delete`)
	assert.Contains(t, got["sources[2].charset"], "klingon")
	assert.Contains(t, got["sources[3].type"], `"carrier-pigeon" is not one of mllp, database, file, http, sftp`)
	assert.Contains(t, got["routes[0].from[0]"], `no listener or source is named "nosuch"`)
}

func TestHTTPSourceProblems(t *testing.T) {
	t.Setenv("WEBIN_TOKEN", "a-token-long-enough-1")
	c, err := config.Load(writeConfig(t, `
sources: [{name: webin, type: http, addr: "127.0.0.1:0", tokens: [{name: lab, token_env: WEBIN_TOKEN}]}]
`))
	require.NoError(t, err)
	o := config.SourceOptionsOf[ingest.HTTPOptions](c.Sources[0])
	assert.Equal(t, "/", o.Path, "default")
	assert.Equal(t, 16<<20, o.MaxBodyBytes, "default")
	tok, err := c.SourceToken(o.Tokens[0])
	require.NoError(t, err)
	assert.Equal(t, "a-token-long-enough-1", tok)

	_, got := loadProblems(t, writeConfig(t, `
sources:
  - {name: a, type: http, addr: nowhere}
  - {name: b, type: http, addr: "127.0.0.1:0", path: hl7, max_body_bytes: 2048, tokens: [{name: x, token_env: NOT_SET_ANYWHERE}]}
`))
	assert.Contains(t, got["sources[0].addr"], "HOST:PORT")
	assert.Contains(t, got["sources[0].tokens"], "at least one token")
	assert.Contains(t, got["sources[1].path"], "must start with /")
	assert.Contains(t, got["sources[1].max_body_bytes"], "less than max_message_bytes")
	assert.Contains(t, got["sources[1].tokens[0]"], "NOT_SET_ANYWHERE is not set")
}

// A source's own keys are its type's: another type's key is a problem at
// its line; a zero written out (stable_for: 0, read at first sight) is
// kept, not taken for "left out".
func TestSourceKeysAreTheirTypes(t *testing.T) {
	c, err := config.Load(writeConfig(t, `
sources: [{name: labdrop, type: file, dir: /srv/hl7/inbox, stable_for: 0}]
destinations: [{name: d, type: file, dir: /tmp/x}]
routes: [{name: r, to: [d]}]
`))
	require.NoError(t, err)
	assert.Zero(t, config.SourceOptionsOf[ingest.FolderOptions](c.Sources[0]).StableFor, "0 written out: at first sight")

	_, got := loadProblems(t, writeConfig(t, `
sources:
  - {name: a, type: file, dir: /in, addr: "127.0.0.1:1"}
  - {name: b, type: http, addr: "127.0.0.1:0", tls: {ca_file: /x}, tokens: [{name: x, token_env: HOME}]}
`))
	assert.Equal(t, "is not a key of type file sources", got["sources[0].addr"])
	assert.Equal(t, "is not a key of type http sources", got["sources[1].tls.ca_file"])
}

// A source of type mllp is a listener: listeners: is its shorthand. Its
// defaults are a listener's (idle_timeout: 0 written out is none), it is
// counted and routed as one, and its problems are named where it was
// written, as are the other sources' after it.
func TestAnMLLPSourceIsAListener(t *testing.T) {
	c, err := config.Load(writeConfig(t, `
sources:
  - {name: drop, type: file, dir: /srv/in}
  - {name: adt, type: mllp, addr: "127.0.0.1:2575", ack_mode: enhanced, idle_timeout: 0, accept_types: [ADT]}
destinations: [{name: d, type: file, dir: /tmp/x}]
routes: [{name: r, from: [adt, drop], to: [d]}]
`))
	require.NoError(t, err)
	require.Len(t, c.Listeners, 1)
	l := c.Listeners[0]
	assert.Equal(t, "adt", l.Name)
	assert.Equal(t, "enhanced", l.AckMode)
	assert.Equal(t, []string{"ADT"}, l.AcceptTypes)
	assert.Equal(t, time.Duration(config.NoTimeout), l.IdleTimeout, "0 written out: none")
	assert.Equal(t, config.DefaultMaxConnections, l.MaxConnections, "a listener's default")
	assert.Equal(t, config.DefaultMaxMessageBytes, l.MaxMessageBytes)
	require.Len(t, c.Sources, 1)
	assert.Equal(t, []string{"adt", "drop"}, c.Origins())
	assert.Equal(t, "sources[1]", c.ListenerKey(0))

	_, got := loadProblems(t, writeConfig(t, `
sources:
  - {name: adt, type: mllp, addr: nowhere, ack_mode: sometimes}
  - {name: nodir, type: file}
destinations: [{name: d, type: file, dir: /tmp/x}]
routes: [{name: r, to: [d]}]
`))
	assert.Contains(t, got["sources[0].addr"], "HOST:PORT")
	assert.Contains(t, got["sources[0].ack_mode"], `"sometimes" is not one of`)
	assert.Contains(t, got["sources[1].dir"], "needs the folder", "the file source keeps its place")
}

// format json or xml needs a script, which compiles, with its line and
// column when it does not; a script without a format is a mistake.
func TestSourceFormatNeedsAScript(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `
sources:
  - {name: a, type: http, addr: "127.0.0.1:1", tokens: [{name: t, token_file: /dev/null}], format: json}
  - {name: b, type: file, dir: /tmp/in, format: xml, script: "return 'MSH|' +;"}
  - {name: c, type: file, dir: /tmp/in2, script: "return 'x';"}
routes: [{name: r, to: [d]}]
destinations: [{name: d, type: file, dir: /tmp/out}]
`))
	assert.Contains(t, got["sources[0].script"], "format json needs script or script_file")
	assert.Contains(t, got["sources[1].script"], "line 1:")
	assert.Contains(t, got["sources[2].format"], "give format: json or xml")
}

// A source's script digest changes with its file's content, so that a
// reload restarts the source with the script as edited.
func TestSourceScriptDigestFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "row.js")
	require.NoError(t, os.WriteFile(script, []byte("return 'MSH|^~\\\\&|A';"), 0o644))
	file := filepath.Join(dir, "hl7broker.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
sources:
  - {name: drop, type: file, dir: `+filepath.Join(dir, "in")+`, format: json, script_file: row.js}
routes: [{name: r, to: [d]}]
destinations: [{name: d, type: file, dir: `+filepath.Join(dir, "out")+`}]
`), 0o644))
	c, err := config.Load(file)
	require.NoError(t, err)
	before := c.SourceScriptDigest(c.Sources[0])
	require.NotEmpty(t, before)
	require.NoError(t, os.WriteFile(script, []byte("return 'MSH|^~\\\\&|B';"), 0o644))
	assert.NotEqual(t, before, c.SourceScriptDigest(c.Sources[0]), "the file was edited")
}
