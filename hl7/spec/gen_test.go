package spec

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dictionaryLib is hl7-dictionary's lib folder as .ci/run installs it
// (npm ci in testdata/node).
const dictionaryLib = "../../testdata/node/node_modules/hl7-dictionary/lib"

// The committed definitions are what the generator makes of
// hl7-dictionary 1.0.1: a change to either shows here.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	if _, err := os.Stat(dictionaryLib); err != nil {
		t.Skip("hl7-dictionary is not installed in testdata/node (.ci/run runs npm ci there)")
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./gen", "-from", dictionaryLib, "-to", out)
	got, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", got)
	made, err := filepath.Glob(filepath.Join(out, "*_gen.go"))
	require.NoError(t, err)
	committed, err := filepath.Glob("*_gen.go")
	require.NoError(t, err)
	require.Len(t, made, len(committed), "the generator makes the files committed")
	for _, f := range made {
		want, err := os.ReadFile(filepath.Base(f))
		require.NoError(t, err, "the generator made %s, which is not committed", filepath.Base(f))
		have, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.True(t, string(want) == string(have), "%s differs from the generator's output: run go run ./hl7/spec/gen -from %s -to hl7/spec", filepath.Base(f), dictionaryLib)
	}
}

// Spot checks against the standard: ADT_A01's structure in 2.5.1, PID's
// 39 fields in 2.5.1, table 0001's values.
func TestDefinitionsAgreeWithTheStandard(t *testing.T) {
	v, _ := Lookup("2.5.1")
	adt := v.Structures["ADT_A01"]
	require.NotNil(t, adt)
	var top []string
	for _, it := range adt.Items {
		top = append(top, it.Name)
	}
	assert.Equal(t, []string{"MSH", "SFT", "EVN", "PID", "PD1", "ROL", "NK1", "PV1", "PV2", "ROL", "DB1", "OBX", "AL1", "DG1", "DRG",
		"PROCEDURE", "GT1", "INSURANCE", "ACC", "UB1", "UB2", "PDA"}, top)
	for _, it := range adt.Items {
		switch it.Name {
		case "MSH", "EVN", "PID", "PV1":
			assert.Equal(t, 1, it.Min, "%s is required", it.Name)
		case "INSURANCE":
			assert.Equal(t, []string{"IN1", "IN2", "IN3", "ROL"}, names(it.Children))
		}
	}
	pid := v.Segment("PID")
	require.Len(t, pid.Fields, 39)
	assert.Equal(t, "Set ID - PID", pid.Fields[0].Name)
	assert.Equal(t, "Identity Reliability Code", pid.Fields[31].Name)
	assert.Equal(t, "Production Class Code", pid.Fields[37].Name)
	assert.Equal(t, "Tribal Citizenship", pid.Fields[38].Name)
	assert.Equal(t, map[string]string{"A": "Ambiguous", "F": "Female", "M": "Male", "N": "Not applicable", "O": "Other", "U": "Unknown"}, HL7Table(1).Values)
}

func names(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}
