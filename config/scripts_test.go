package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

func TestScriptsLoadWithTheirFilesTablesAndLibraries(t *testing.T) {
	file := writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0"}]
scripts:
  time_limit: 250ms
  libraries: [lib/common.js]
  tables:
    Sex: {table: {M: Male, F: Female}}
    wards: {csv: wards.csv}
  configuration: {Facility: MAIN}
routes:
  - name: adt
    when: {script_file: scripts/when.js}
    transform:
      - script_file: scripts/adt.js
        when: {field: PID-8, exists: true}
      - script: "vars.ward = lookup('wards', msg.get('PV1-3.1'), 'none')"
    to: [web]
destinations:
  - name: web
    type: file
    dir: /tmp/out
    encoder: {script: "return label(msg) + '/' + vars.sex + '/' + vars.ward + '/' + $cfg('Facility')", mirth: true}
`)
	dir := filepath.Dir(file)
	for name, src := range map[string]string{
		"lib/common.js":   "function label(m) { return m['PID']['PID.5']['PID.5.1'].toString(); }",
		"scripts/when.js": "return msg.get('MSH-9.1') == 'ADT';",
		"scripts/adt.js":  "vars.sex = lookup('Sex', msg.get('PID-8'));",
		"wards.csv":       "from,to\nW1,West 1\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	c, err := config.Load(file)
	require.NoError(t, err)
	assert.Equal(t, "250ms", c.ScriptEngine().Limits().Time.String())
	routes, err := c.CompiledRoutes()
	require.NoError(t, err)
	m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||X||SMITH^J||19700101|F\rPV1||I|W1\r"))
	require.NoError(t, err)
	require.True(t, routes[0].When.Match(condition.Input{Message: m}))
	out, err := routes[0].Transform.ApplyParsed(m, m.Bytes(), nil)
	require.NoError(t, err)
	assert.Equal(t, m.Bytes(), out, "the steps set variables only")

	enc, err := c.Encoder(c.Destinations[0])
	require.NoError(t, err)
	res, err := enc.Run(&script.Input{Message: m, Vars: map[string]string{"sex": "Female", "ward": "West 1"}})
	require.NoError(t, err)
	assert.Equal(t, "SMITH/Female/West 1/MAIN", string(res.Payload), "table and configuration keys keep their case")
}

func TestScriptProblemsAreReportedWithTheirPlace(t *testing.T) {
	file := writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0"}]
scripts: {libraries: [nope.js]}
routes:
  - name: adt
    when: {script: "msg.get('PID-3' =="}
    transform:
      - script: "var a = ;"
      - set: PID-5
        value: x
        when: {field: NOPE, equals: x}
      - script_file: missing.js
      - {script: "1", script_file: x.js}
    to: [web]
destinations:
  - name: web
    type: http
    url: http://127.0.0.1:1/x
    encoding: json
    encoder: {script: "return {"}
`)
	ce, got := loadProblems(t, file)
	assert.Contains(t, got["scripts.libraries[0]"], "cannot read nope.js")
	assert.Contains(t, got["routes[0].when.script"], "line 1:")
	assert.Contains(t, got["routes[0].transform[0].script"], "line 1:9: syntax error")
	assert.Contains(t, got["routes[0].transform[1].when.field"], "NOPE")
	assert.Contains(t, got["routes[0].transform[2].script_file"], "cannot read missing.js")
	assert.Contains(t, got["routes[0].transform[3]"], "not script and script_file")
	assert.Contains(t, got["destinations[0].encoder"], "does not go with encoding json")
	assert.Contains(t, got["destinations[0].encoder.script"], "syntax error")
	for _, p := range ce.Problems {
		if p.Key == "routes[0].transform[0].script" {
			assert.NotZero(t, p.Line, "placed in the config file")
		}
	}
}

func TestCheckWarnsThatScriptLogsMayCarryPatientData(t *testing.T) {
	c, err := config.Load(writeConfig(t, "listeners: [{name: a, addr: '127.0.0.1:0'}]\nscripts: {log: true, time_limit: 30s}\n"))
	require.NoError(t, err)
	keys := map[string]string{}
	for _, w := range c.Warnings() {
		keys[w.Key] = w.Message
	}
	assert.Contains(t, keys["scripts.log"], "patient data")
	assert.Contains(t, keys["scripts.time_limit"], "runaway")
}
