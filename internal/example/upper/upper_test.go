package upper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	_ "github.com/hl7broker/hl7broker/delivery" // the destination types
	"github.com/hl7broker/hl7broker/hl7"
)

const adt = "MSH|^~\\&|REG|H|EMR|H|20260101||ADT^A01|C-1|P|2.5\rPID|1||M1||Müller^ann\r"

func load(t *testing.T, step string) (*config.Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`listeners: [{name: adt, addr: "127.0.0.1:0"}]
routes: [{name: all, to: [d], transform: [`+step+`]}]
destinations: [{name: d, type: file, dir: /tmp/x}]
`), 0o644))
	return config.Load(f)
}

// The one file is all it takes: check compiles the step from a route's
// YAML, refuses a key it does not take at its line, and the route's
// pipeline applies it.
func TestAnUppercaseStepIsOneFile(t *testing.T) {
	cfg, err := load(t, `{uppercase: PID-5.2}`)
	require.NoError(t, err)
	p, problems := cfg.Pipeline(0)
	require.Empty(t, problems)
	out, err := p.Apply([]byte(adt))
	require.NoError(t, err)
	m, err := hl7.Parse(out)
	require.NoError(t, err)
	assert.Equal(t, "ANN", m.ValueString(hl7.MustParsePath("PID-5.2")))
	assert.Equal(t, "Müller", m.ValueString(hl7.MustParsePath("PID-5.1")), "other fields untouched")
	assert.Equal(t, "uppercase PID-5.2", p[0].String())

	_, err = load(t, `{uppercase: PID-5.2, only: latin, value: x}`)
	require.Error(t, err)
	text := err.Error()
	assert.Contains(t, text, `routes[0].transform[0].value: uppercase does not take value`)
	assert.True(t, strings.Contains(text, "line 2:"), "a problem has its line: %s", text)
}
