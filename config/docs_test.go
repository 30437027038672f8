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

	"github.com/hl7broker/hl7broker/config"
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

// docs/configuration.md's key tables and the registered destination
// types agree: the common table lists every common key, and each type's
// section lists every key of its options and no key it does not take.
func TestConfigurationDocsListEveryDestinationKey(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	doc := string(raw)
	dests := mdSection(doc, "## `destinations[]`")
	require.NotEmpty(t, dests)
	common := slices.DeleteFunc(config.Keys(reflect.TypeFor[config.DestinationConfig]()),
		func(k string) bool { return k == "tls.client_ca_file" }) // refused: a destination is a client
	documented := tableKeys(dests)
	assert.ElementsMatch(t, common, documented, "the common table of destinations[] against DestinationConfig's keys")
	for _, name := range config.DestinationTypes() {
		dt, _ := config.LookupDestinationType(name)
		var section string
		for _, h := range regexp.MustCompile("(?m)^### .*\\(`type: "+name+"`\\)$").FindAllString(dests, -1) {
			section = mdSection(doc, h)
		}
		if !assert.NotEmpty(t, section, "docs/configuration.md has no section \"### ... (`type: %s`)\" under destinations[]", name) {
			continue
		}
		keys := tableKeys(section)
		for _, k := range config.Keys(dt.Options) {
			assert.True(t, covered(k, keys), "type %s: key %s is not in its table", name, k)
		}
		for _, k := range keys {
			own := slices.ContainsFunc(config.Keys(dt.Options), func(o string) bool { return covered(o, []string{k}) })
			assert.True(t, own || covered(k, common) || slices.ContainsFunc(common, func(c string) bool { return covered(c, []string{k}) }),
				"type %s: its table lists %s, which it does not take", name, k)
		}
	}
}
