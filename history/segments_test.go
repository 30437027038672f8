package history

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A message's page names every field of every segment's every
// repetition from the definitions of its version, and opens a field into
// its repetitions' components and subcomponents, named by its data type;
// values unescaped; MSH-1 and MSH-2 are not split.
func TestSegmentsNameFieldsAndComponents(t *testing.T) {
	msg := "MSH|^~\\&|LAB|HOSP|EMR|HOSP|20260101||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^CLINIC^PI||O\\T\\Brien^Ann\r" +
		"OBX|1|CE|1^A^LN||POS^Positive^L\r" +
		"OBX|2|NM|2^B^LN||7.5\r"
	segs := segments([]byte(msg))
	require.Len(t, segs, 4)
	field := func(seg int, path string) Field {
		for _, f := range segs[seg].Fields {
			if f.Path == path {
				return f
			}
		}
		t.Fatalf("no %s in %+v", path, segs[seg])
		return Field{}
	}
	assert.Empty(t, field(0, "MSH-2").Components, "the encoding characters are not split")
	msh9 := field(0, "MSH-9")
	assert.Equal(t, "Message Type", msh9.Name)
	assert.Equal(t, "MSG", msh9.Type)
	assert.Equal(t, "Message Structure", msh9.Components[2].Name)

	pid3 := field(1, "PID-3")
	assert.Equal(t, "Patient Identifier List", pid3.Name)
	var paths []string
	for _, c := range pid3.Components {
		paths = append(paths, c.Path+"="+c.Value+" ("+c.Name+")")
	}
	assert.Equal(t, []string{"PID-3[1].1=123 (ID Number)", "PID-3[1].4=HOSP&1.2.3&ISO (Assigning Authority)", "PID-3[1].5=MR (Identifier Type Code)",
		"PID-3[2].1=456 (ID Number)", "PID-3[2].4=CLINIC (Assigning Authority)", "PID-3[2].5=PI (Identifier Type Code)"}, paths)
	auth := pid3.Components[1].Subcomponents
	require.Len(t, auth, 3)
	assert.Equal(t, Component{Path: "PID-3[1].4.2", Name: "Universal ID", Type: "ST", Value: "1.2.3"}, auth[1])

	pid5 := field(1, "PID-5")
	require.Len(t, pid5.Components, 2)
	assert.Equal(t, "O&Brien", pid5.Components[0].Value, "unescaped")
	assert.Equal(t, "Family Name", pid5.Components[0].Name)

	obx5 := field(2, "OBX-5")
	assert.Equal(t, "CE", obx5.Type, "OBX-5 takes the type OBX-2 gives")
	assert.Equal(t, "Text", obx5.Components[1].Name)
	second := field(3, "OBX[2]-3")
	assert.Equal(t, "Observation Identifier", second.Name, "every repetition of a segment is named")
	assert.Empty(t, field(3, "OBX[2]-5").Components, "a plain value has no components")
}
