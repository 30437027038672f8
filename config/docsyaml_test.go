package config_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hl7broker/hl7broker/config"
)

// jsonInstance is v as the JSON value a schema validates.
func jsonInstance(t *testing.T, v any) any {
	t.Helper()
	j, err := json.Marshal(v)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	return inst
}

// yamlBlock is a ```yaml block of a markdown file.
type yamlBlock struct {
	file string
	line int
	text string
}

func docYAMLBlocks(t *testing.T) []yamlBlock {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	require.NoError(t, err)
	files = append(files, "../README.md")
	var out []yamlBlock
	re := regexp.MustCompile("(?ms)^```ya?ml\n(.*?)^```")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllSubmatchIndex(raw, -1) {
			out = append(out, yamlBlock{f, 1 + strings.Count(string(raw[:m[0]]), "\n"), string(raw[m[2]:m[3]])})
		}
	}
	return out
}

// Every YAML block of the docs that is a config (its top-level keys are
// config keys) is valid against the JSON Schema: what a reader copies
// from the docs is what the broker takes.
func TestDocsYAMLBlocksMatchTheSchema(t *testing.T) {
	s := compiledSchema(t)
	top := map[string]bool{}
	for _, k := range config.Keys(reflect.TypeFor[config.Config]()) {
		top[strings.Split(k, ".")[0]] = true
	}
	checked := 0
	for _, b := range docYAMLBlocks(t) {
		var list []map[string]any
		if yaml.Unmarshal([]byte(b.text), &list) == nil && len(list) > 0 && list[0]["name"] == nil {
			// transform steps
			checked++
			route := map[string]any{"routes": []any{map[string]any{"name": "r", "transform": list}}}
			assert.NoError(t, s.Validate(jsonInstance(t, route)), "%s:%d", b.file, b.line)
			continue
		}
		if len(list) > 0 && list[0]["name"] != nil {
			// entries of a list: valid as one of the config's lists
			checked++
			var errs []error
			indented := "    " + strings.ReplaceAll(strings.TrimRight(b.text, "\n"), "\n", "\n    ") + "\n"
			for _, doc := range []string{"listeners:\n" + b.text, "sources:\n" + b.text, "routes:\n" + b.text, "destinations:\n" + b.text,
				"alerts:\n  rules:\n" + indented, "alerts:\n  notifiers:\n" + indented} {
				err := s.Validate(yamlInstance(t, []byte(doc)))
				if err == nil {
					errs = nil
					break
				}
				errs = append(errs, err)
			}
			assert.Empty(t, errs, "%s:%d: valid in no list of the config", b.file, b.line)
			continue
		}
		var m map[string]any
		if yaml.Unmarshal([]byte(b.text), &m) != nil || len(m) == 0 {
			continue // a fragment (a single key's value)
		}
		keys := slices.Collect(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.ContainsFunc(keys, func(k string) bool { return top[k] }) {
			// a piece of a route (when, transform) is checked in one
			if slices.ContainsFunc(keys, func(k string) bool { return k == "when" || k == "transform" }) {
				checked++
				route := map[string]any{"routes": []any{m}}
				if m["name"] == nil {
					m["name"] = "r"
				}
				assert.NoError(t, s.Validate(jsonInstance(t, route)), "%s:%d", b.file, b.line)
			}
			continue // not a config: a rule file, an OpenAPI piece...
		}
		checked++
		assert.NoError(t, s.Validate(yamlInstance(t, []byte(b.text))), "%s:%d", b.file, b.line)
	}
	assert.GreaterOrEqual(t, checked, 30, "the docs hold many config blocks")
}
