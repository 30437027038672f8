package config_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/hl7broker/hl7broker/config"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.Schema()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("hl7broker.schema.json", doc))
	s, err := c.Compile("hl7broker.schema.json")
	require.NoError(t, err)
	return s
}

// yamlInstance reads YAML as the JSON value an editor would validate.
func yamlInstance(t *testing.T, text []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(text, &v))
	j, err := json.Marshal(v)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	return inst
}

func TestSchemaAcceptsOurConfigsAndRefusesMistakes(t *testing.T) {
	s := compiledSchema(t)
	for _, f := range []string{"../examples/hl7broker.yaml", "../testdata/routetest/hl7broker.yaml", "../deploy/hl7broker/hl7broker.yaml"} {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NoError(t, s.Validate(yamlInstance(t, text)), f)
		_, err = config.Load(f)
		assert.NoError(t, err, "check passes %s", f)
	}
	for _, bad := range []string{
		"nats: {histroy: 1h}",           // unknown key
		"nats: {durability: sometimes}", // not in the enum
		"nats: {history: forever}",      // not a duration
		"listeners: [{name: a, max_message_bytes: big}]",
		"routes: [{name: r, when: {all: [{field: OBX-11, over: most}]}}]", // deep in a recursive when
		"routes: [{name: r, transform: [{set: PID-5, valeu: x}]}]",
	} {
		assert.Error(t, s.Validate(yamlInstance(t, []byte(bad))), bad)
	}
}

func TestSchemaInDocsIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("../docs/hl7broker.schema.json")
	require.NoError(t, err)
	assert.Equal(t, string(config.Schema()), string(committed), "run: go run ./cmd/hl7broker schema > docs/hl7broker.schema.json")
}
