package config_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/transforms"
)

// mdSection is the text of a markdown section from its heading to the
// next heading of the same level or higher.
func mdSection(doc, heading string) string {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	level := strings.Index(heading, " ") // number of #
	rest := doc[i+len(heading)+2:]
	for _, h := range regexp.MustCompile(`(?m)^#{1,6} `).FindAllStringIndex(rest, -1) {
		if h[1]-h[0]-1 <= level {
			return rest[:h[0]]
		}
	}
	return rest
}

// tableKeys are the keys in the first column of the first "| key" table
// of text: each `key` in it (a cell may name several).
func tableKeys(text string) []string {
	var keys []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "| key |"):
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "| "):
			cell := strings.SplitN(line, "|", 3)[1]
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
				keys = append(keys, m[1])
			}
		case in:
			return keys
		}
	}
	return keys
}

// covered says whether key is documented by one of docs (tls.* covers
// every tls key).
func covered(key string, docs []string) bool {
	return slices.ContainsFunc(docs, func(d string) bool {
		return d == key || strings.HasSuffix(d, ".*") && strings.HasPrefix(key, strings.TrimSuffix(d, "*"))
	})
}

// docs/configuration.md's key tables and the registered types agree: the
// common table of destinations[] and of sources[] lists every common key,
// and each type's section ("### ... (`type: NAME`)") lists every key of
// its options and no key it does not take.
func TestConfigurationDocsListEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	doc := string(raw)
	checkTypedKeys(t, doc, "## `destinations[]`",
		slices.DeleteFunc(config.Keys(reflect.TypeFor[config.DestinationConfig]()),
			func(k string) bool { return k == "tls.client_ca_file" }), // refused: a destination is a client
		config.DestinationTypes(), func(name string) reflect.Type { dt, _ := config.LookupDestinationType(name); return dt.Options })
	checkTypedKeys(t, doc, "## `sources[]`", config.Keys(reflect.TypeFor[config.SourceConfig]()),
		config.SourceTypes(), func(name string) reflect.Type { st, _ := config.LookupSourceType(name); return st.Options })
}

func checkTypedKeys(t *testing.T, doc, heading string, common, types []string, options func(string) reflect.Type) {
	t.Helper()
	list := mdSection(doc, heading)
	require.NotEmpty(t, list, heading)
	assert.ElementsMatch(t, common, tableKeys(list), "the common table of %s", heading)
	for _, name := range types {
		var section string
		for _, h := range regexp.MustCompile("(?m)^### .*\\(`type: "+name+"`\\)$").FindAllString(list, -1) {
			section = mdSection(doc, h)
		}
		if !assert.NotEmpty(t, section, "docs/configuration.md has no section \"### ... (`type: %s`)\" under %s", name, heading) {
			continue
		}
		keys, own := tableKeys(section), config.Keys(options(name))
		for _, k := range own {
			assert.True(t, covered(k, keys), "%s type %s: key %s is not in its table", heading, name, k)
		}
		for _, k := range keys {
			takes := slices.ContainsFunc(own, func(o string) bool { return covered(o, []string{k}) })
			assert.True(t, takes || covered(k, common) || slices.ContainsFunc(common, func(c string) bool { return covered(c, []string{k}) }),
				"%s type %s: its table lists %s, which it does not take", heading, name, k)
		}
	}
}

// docs/routing.md's table of transform steps has a row for every
// registered step ("`op: ...`") naming each of its keys.
func TestRoutingDocsListEveryStepAndItsKeys(t *testing.T) {
	raw, err := os.ReadFile("../docs/routing.md")
	require.NoError(t, err)
	steps := mdSection(string(raw), "## Transform steps")
	require.NotEmpty(t, steps)
	for _, op := range transforms.StepTypes() {
		var rows []string
		for _, line := range strings.Split(steps, "\n") {
			if strings.HasPrefix(line, "| `"+op+":") {
				rows = append(rows, line)
			}
		}
		if !assert.NotEmpty(t, rows, "docs/routing.md has no row for the step %s", op) {
			continue
		}
		text := strings.Join(rows, "\n")
		for _, k := range config.Keys(transforms.StepOptions(op)) {
			if k = strings.Split(k, ".")[0]; k != op {
				assert.Contains(t, text, "`"+k+":", "step %s: its row names no key %s", op, k)
			}
		}
	}
}

// docs/routing.md's table of conditions names every field-test operator
// the condition language has.
func TestRoutingDocsListEveryOperator(t *testing.T) {
	raw, err := os.ReadFile("../docs/routing.md")
	require.NoError(t, err)
	table := mdSection(string(raw), "## Conditions (`when`)")
	require.NotEmpty(t, table)
	var keys []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| ") {
			for _, m := range regexp.MustCompile("`([a-z_]+)(:[^`]*)?`").FindAllStringSubmatch(strings.SplitN(line, "|", 3)[1], -1) {
				keys = append(keys, m[1])
			}
		}
	}
	for _, op := range condition.Operators() {
		assert.Contains(t, keys, op, "docs/routing.md's conditions table has no operator %s", op)
	}
}
