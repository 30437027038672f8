package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatsAndLevels(t *testing.T) {
	var b bytes.Buffer
	log, err := New(&b, "info", "auto", true)
	require.NoError(t, err)
	log.Debug().Msg("hidden")
	log.Info().Str("listener", "adt").Msg("stored")
	var line map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &line), "a service logs JSON: %s", b.String())
	assert.Equal(t, "stored", line["message"])
	assert.NotContains(t, b.String(), "hidden", "below the level")

	b.Reset()
	log, err = New(&b, "debug", "auto", false)
	require.NoError(t, err)
	log.Debug().Msg("shown")
	assert.Contains(t, b.String(), "DBG shown", "a tool logs console lines")

	_, err = New(&b, "loud", "json", false)
	assert.ErrorContains(t, err, "--log-level")
	_, err = New(&b, "info", "xml", false)
	assert.ErrorContains(t, err, "--log-format")
}
