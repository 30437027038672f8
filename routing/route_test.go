package routing

import (
	"testing"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRouteExplainsFrom(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1\r"))
	require.NoError(t, err)
	r := Route{From: []string{"adt"}}
	ok, why := r.Explain(condition.Input{Listener: "lab", Message: m})
	assert.False(t, ok)
	assert.Contains(t, why, `listener "lab" is not one of from [adt]`)
	assert.False(t, r.Matches(condition.Input{Listener: "lab", Message: m}))
	assert.True(t, r.Matches(condition.Input{Listener: "adt", Message: m}))
}
