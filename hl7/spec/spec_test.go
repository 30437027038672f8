package spec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
)

// Every version is defined, with the segments, data types, structures
// and tables a reader of real messages needs.
func TestDefinitionsOfEveryVersion(t *testing.T) {
	for _, id := range Versions() {
		v, exact := Lookup(id)
		require.True(t, exact, id)
		assert.Equal(t, id, v.ID)
		assert.NotNil(t, v.Segment("MSH"), id)
		assert.NotNil(t, v.Segment("PID"), id)
		assert.NotEmpty(t, v.Structures, id)
		msh9 := v.Field("MSH", 9)
		require.NotNil(t, msh9, id)
		assert.Contains(t, strings.ToLower(msh9.Name), "message type", id)
	}
	v, _ := Lookup("2.5.1")
	assert.Equal(t, "Patient Name", v.Field("PID", 5).Name)
	assert.Equal(t, "XPN", v.Field("PID", 5).Type)
	assert.True(t, v.Field("PID", 3).Required)
	assert.Equal(t, 0, v.Field("PID", 3).Repeats, "PID-3 repeats without bound")
	assert.Equal(t, "Family Name", v.Component("XPN", 1).Name)
	assert.Equal(t, "Surname", v.Component("FN", 1).Name)
	assert.Equal(t, "Admit Date/Time", v.Field("PV1", 44).Name, "PV1-44, unnamed in the console's old table")
	assert.Nil(t, v.Field("PID", 99))
	assert.Nil(t, v.Component("ST", 1), "a primitive has no components")
	oru := v.Structures["ORU_R01"]
	require.NotNil(t, oru)
	assert.Equal(t, "MSH", oru.Items[0].Name)
	var groups []string
	for _, it := range oru.Items {
		if it.Group() {
			groups = append(groups, it.Name)
		}
	}
	assert.Contains(t, groups, "PATIENT_RESULT")
	sex := HL7Table(1)
	require.NotNil(t, sex)
	assert.Equal(t, "Female", sex.Values["F"])
	assert.Nil(t, HL7Table(999999))
}

// A version not defined takes the nearest earlier one; something that
// is not a version takes the default.
func TestLookupTakesTheNearestEarlierVersion(t *testing.T) {
	for asked, want := range map[string]string{
		"2.8": "2.7.1", "2.8.2": "2.7.1", "2.3.2": "2.3.1", "2.5.1^ISO": "2.5.1", "2.10": "2.7.1",
		"": Default, "3.0": Default, "abc": Default, "2.0": Default,
	} {
		v, exact := Lookup(asked)
		assert.Equal(t, want, v.ID, asked)
		assert.False(t, exact && asked != want, asked)
	}
}

// Versions named in messages are remembered up to a bound: a sender
// writing a new MSH-12 each time fills no memory.
func TestVersionNamesRememberedAreBounded(t *testing.T) {
	for i := range 500 {
		v := lookupBytes([]byte("2.5.1-" + strings.Repeat("x", i)))
		assert.Equal(t, "2.5.1", v.ID)
	}
	mu.Lock()
	n := len(built)
	mu.Unlock()
	assert.LessOrEqual(t, n, maxRemembered)
}

// The JSON encoding's names come from the definitions of the message's
// version: a segment's, a field's, a component's by the field's type, a
// subcomponent's by the component's; a Z segment has none.
func TestJSONNamesFromTheDefinitions(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01^ADT_A01|1|P|2.5.1\rPID|1||M1^^^H&1.2.3&ISO^MR||Doe^Jo\rZPI|x\r"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := hl7.EncodeJSONNamed(m, Namer(m))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Segments []map[string]any
		Names    map[string]string
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"PID": "Patient Identification", "PID.5": "Patient Name", "PID.5.1": "Family Name",
		"PID.3.4": "Assigning Authority", "PID.3.4.2": "Universal ID", "MSH.9.1": "Message Code"} {
		if got := doc.Names[key]; got != want {
			t.Errorf("names[%s] = %q, want %q", key, got, want)
		}
	}
	if _, ok := doc.Names["ZPI"]; ok || len(doc.Segments) != 3 {
		t.Errorf("a Z segment has no name; the segments are as EncodeJSON makes them: %s", out)
	}
	plain, _ := hl7.EncodeJSON(m)
	if !bytes.HasPrefix(out, plain[:len(plain)-1]) {
		t.Errorf("names come after the segments, which stay as they were")
	}
}
