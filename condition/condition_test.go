package condition

import (
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const oru = "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
	"PID|1||P7^^^LAB^MR~X9^^^OTHER^PI||Jones^Mary||19700101|F\r" +
	"OBR|1|||CBC\r" +
	"OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|||||F\r" +
	"OBX|2|NM|4544-3^Hematocrit^LN||39.5|%|||||F\r" +
	"OBX|3|ST|NOTE||pending||||||P\r"

func s(v string) *string   { return &v }
func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

func TestConditions(t *testing.T) {
	m, err := hl7.Parse([]byte(oru))
	require.NoError(t, err)
	in := Input{Listener: "lab", Message: m}
	for _, tc := range []struct {
		name string
		when When
		want bool
	}{
		{"empty matches all", When{}, true},
		{"listener", When{Listener: []string{"adt", "lab"}}, true},
		{"type and event", When{Type: []string{"ORU"}, Event: []string{"R01", "R03"}}, true},
		{"wrong event", When{Type: []string{"ORU"}, Event: []string{"R03"}}, false},
		{"structure, version, applications, facilities", When{Structure: []string{"ORU_R01"}, Version: []string{"2.5.1"},
			SendingApplication: []string{"LAB"}, SendingFacility: []string{"LABFAC"}, ReceivingApplication: []string{"EHR"}, ReceivingFacility: []string{"HOSP"}}, true},
		{"equals", When{Field: "PID-8", Equals: s("F")}, true},
		{"in", When{Field: "PID-8", In: []string{"M", "U"}}, false},
		{"prefix on any repetition", When{Field: "PID-3.4", Prefix: s("OTH")}, true},
		{"a named repetition only", When{Field: "PID-3[1].4", Prefix: s("OTH")}, false},
		{"matches", When{Field: "OBX-3.1", Matches: s(`^\d+-\d$`)}, true},
		{"exists", When{Field: "PID-7", Exists: b(true)}, true},
		{"absent does not exist", When{Field: "PID-29", Exists: b(true)}, false},
		{"empty", When{Field: "PID-29", Empty: b(true)}, true},
		{"numeric, any OBX", When{Field: "OBX-5", GT: f(39)}, true},
		{"numeric, every OBX: text is not a number", When{Field: "OBX-5", GE: f(0), Over: "all"}, false},
		{"every OBX final: no", When{Field: "OBX-11", Equals: s("F"), Over: "all"}, false},
		{"a named OBX", When{Field: "OBX[2]-11", Equals: s("F")}, true},
		{"date before", When{Field: "PID-7", Before: s("19800101")}, true},
		{"date after", When{Field: "MSH-7", After: s("20260114120001")}, false},
		{"all", When{All: []When{{Type: []string{"ORU"}}, {Field: "PID-8", Equals: s("F")}}}, true},
		{"any", When{Any: []When{{Type: []string{"ADT"}}, {Field: "PID-8", Equals: s("F")}}}, true},
		{"not", When{Not: &When{Field: "OBX-11", Equals: s("D")}}, true},
		{"keys of one node all hold", When{Type: []string{"ORU"}, Field: "PID-8", Equals: s("M")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, problems := Compile(tc.when)
			require.Empty(t, problems)
			assert.Equal(t, tc.want, c.Match(in))
			ok, why := c.Explain(in)
			assert.Equal(t, tc.want, ok, "Explain agrees with Match")
			assert.NotEmpty(t, why)
		})
	}
}

func TestExplainNamesTheDecidingCondition(t *testing.T) {
	m, err := hl7.Parse([]byte(oru))
	require.NoError(t, err)
	c, problems := Compile(When{Type: []string{"ORU"}, Field: "OBX-11", Equals: s("F"), Over: "all"})
	require.Empty(t, problems)
	ok, why := c.Explain(Input{Message: m})
	assert.False(t, ok)
	assert.Equal(t, `OBX-11 (every one) equals "F": false`, why)
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, problems := Compile(When{
		Type:   []string{"AD T"},
		Equals: s("x"), // no field
		All: []When{
			{Field: "PID-x", Equals: s("a")},
			{Field: "PID-5", Equals: s("a"), Prefix: s("b")},
			{Field: "PID-5", Matches: s("(")},
			{Field: "PID-7", Before: s("yesterday")},
			{Field: "PID-5", Equals: s("a"), Over: "most"},
		},
		Not: &When{Event: []string{"A 1"}},
	})
	keys := map[string]bool{}
	for _, p := range problems {
		keys[p.Key] = true
	}
	for _, k := range []string{"type[0]", "equals", "all[0].field", "all[1].field", "all[2].matches", "all[3].before", "all[4].over", "not.event[0]"} {
		assert.True(t, keys[k], "a problem at %s; got %v", k, problems)
	}
}

func TestScopeNarrowsAFieldToOneSegment(t *testing.T) {
	m, err := hl7.Parse([]byte(oru))
	require.NoError(t, err)
	c, problems := Compile(When{Field: "OBX-11", Equals: s("P")})
	require.Empty(t, problems)
	assert.True(t, c.Match(Input{Message: m}), "unscoped: any OBX")
	assert.False(t, c.Match(Input{Message: m, Scope: Scope{Segment: "OBX", Occurrence: 1}}), "the first OBX is final")
	assert.True(t, c.Match(Input{Message: m, Scope: Scope{Segment: "OBX", Occurrence: 3}}))
	pid, _ := Compile(When{Field: "PID-8", Equals: s("F")})
	assert.True(t, pid.Match(Input{Message: m, Scope: Scope{Segment: "OBX", Occurrence: 1}}), "other segments are read as usual")
}
