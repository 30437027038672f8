package hl7

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSearchKeysReadEveryRepetition(t *testing.T) {
	paths, err := SearchKeyPaths(map[string]string{"mrn": "PID-3.1", "visit": "PV1-19"})
	require.NoError(t, err)
	var m Message
	require.NoError(t, m.ParseWith([]byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5.1\rPID|1||M1^^^H^MR~M2^^^X^PI||Doe\r"), DefaultLimits))
	assert.Equal(t, map[string][]string{"mrn": {"M1", "M2"}}, SearchKeyValues(&m, paths), "no visit: no key")
	_, err = SearchKeyPaths(map[string]string{"bad": "not a path"})
	assert.ErrorContains(t, err, "search key bad")
}
