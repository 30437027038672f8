package config_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
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
	assert.Equal(t, "*", s.Glob)
	assert.Equal(t, "move", s.OnDone)
	assert.Equal(t, time.Second, s.StableFor)
	assert.Equal(t, time.Second, s.Poll)
	assert.Equal(t, config.DefaultMaxMessageBytes, s.MaxMessageBytes)
	done, failed := s.FileDirs()
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
	assert.Contains(t, got["sources[3].type"], `"carrier-pigeon" is not one of file`)
	assert.Contains(t, got["routes[0].from[0]"], `no listener or source is named "nosuch"`)
}
