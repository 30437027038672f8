package transforms

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const adt = "MSH|^~\\&|REGADT|MCM|IFENG|SUNNYVALE|20260114081530||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r" +
	"EVN|A01|20260114081500\r" +
	"PID|1||MRN1^^^MCM^MR||Müller^José||19610615|M|||1 Main St^^Springfield^IL||(555)555-1234\r" +
	"ZPI|1|custom\r" +
	"PV1|1|I|W2^201^B^MCM\r" +
	"NTE|1||a note\r" +
	"ZXT|x\r"

func str(s string) *string { return &s }

func compile(t *testing.T, specs ...Spec) Pipeline {
	t.Helper()
	p, problems := Compile(specs, Options{ReadFile: os.ReadFile})
	require.Empty(t, problems)
	return p
}

func apply(t *testing.T, p Pipeline, msg string) *hl7.Message {
	t.Helper()
	out, err := p.Apply([]byte(msg))
	require.NoError(t, err)
	m, err := hl7.Parse(out)
	require.NoError(t, err)
	return m
}

func get(t *testing.T, m *hl7.Message, path string) string {
	t.Helper()
	v, err := m.Get(path)
	require.NoError(t, err)
	return v
}

func TestEmptyPipelineKeepsTheBytes(t *testing.T) {
	in := []byte(adt)
	out, err := Pipeline(nil).Apply(in)
	require.NoError(t, err)
	assert.Same(t, &in[0], &out[0], "the very same bytes")
	out, err = compile(t, Spec{Op: "replace", Options: &ReplaceOptions{Replace: "PID-13", Pattern: "[^0-9]", With: str("")}}).Apply([]byte(strings.Replace(adt, "(555)555-1234", "5555551234", 1)))
	require.NoError(t, err)
	assert.Equal(t, strings.Replace(adt, "(555)555-1234", "5555551234", 1), string(out), "a step that changes nothing leaves every byte")
}

func TestSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []Spec
		check func(t *testing.T, m *hl7.Message)
	}{
		{"set a literal, escaped", []Spec{{Op: "set", Options: &SetOptions{Set: "MSH-5", Value: str("EMR")}}, {Op: "set", Options: &SetOptions{Set: "PID-5.1", Value: str("A^B")}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "EMR", get(t, m, "MSH-5"))
			assert.Equal(t, "A^B", get(t, m, "PID-5.1"), "a literal's ^ is data, not structure")
			assert.Equal(t, "José", get(t, m, "PID-5.2"))
		}},
		{"set a template", []Spec{{Op: "set", Options: &SetOptions{Set: "PID-2", Template: str("{{PID-3.1}}^{{ PID-3.4 }}")}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "MRN1", get(t, m, "PID-2.1"))
			assert.Equal(t, "MCM", get(t, m, "PID-2.2"), "a template's ^ is structure")
		}},
		{"copy and move", []Spec{{Op: "copy", Options: &CopyOptions{Copy: "PID-3.1", To: "PID-2"}}, {Op: "move", Options: &MoveOptions{Move: "PV1-3.4", To: "PV1-39"}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "MRN1", get(t, m, "PID-2"))
			assert.Equal(t, "MRN1", get(t, m, "PID-3.1"), "copy keeps the source")
			assert.Equal(t, "MCM", get(t, m, "PV1-39"))
			assert.Equal(t, "", get(t, m, "PV1-3.4"), "move empties the source")
		}},
		{"clear and delete", []Spec{{Op: "clear", Options: &ClearOptions{Clear: "PID-13"}}, {Op: "delete", Options: &DeleteOptions{Delete: "NTE"}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "", get(t, m, "PID-13"))
			assert.False(t, m.Has(hl7.MustParsePath("NTE")))
		}},
		{"map inline, keep on a miss", []Spec{{Op: "map", Options: &MapOptions{Map: "PV1-3.4", Table: map[string]string{"MCM": "MAIN"}}}, {Op: "map", Options: &MapOptions{Map: "MSH-4", Table: map[string]string{"X": "Y"}}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "MAIN", get(t, m, "PV1-3.4"))
			assert.Equal(t, "MCM", get(t, m, "MSH-4"))
		}},
		{"map with a default", []Spec{{Op: "map", Options: &MapOptions{Map: "MSH-4", Table: map[string]string{"X": "Y"}, OnMiss: "default", Default: "OTHER"}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "OTHER", get(t, m, "MSH-4"))
		}},
		{"replace by regular expression", []Spec{{Op: "replace", Options: &ReplaceOptions{Replace: "PID-13", Pattern: `\((\d{3})\)(\d{3})-(\d{4})`, With: str("$1-$2-$3")}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "555-555-1234", get(t, m, "PID-13"))
		}},
		{"remove Z-segments and NTE", []Spec{{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"Z*", "NTE"}}}}, func(t *testing.T, m *hl7.Message) {
			var names []string
			for s := range m.Segments() {
				names = append(names, s.Name())
			}
			assert.Equal(t, []string{"MSH", "EVN", "PID", "PV1"}, names)
		}},
		{"add a segment after PID and at the end", []Spec{{Op: "add_segment", Options: &AddOptions{AddSegment: "ZPD|{{PID-3.1}}", After: "PID"}}, {Op: "add_segment", Options: &AddOptions{AddSegment: "ZZZ|end"}}}, func(t *testing.T, m *hl7.Message) {
			var names []string
			for s := range m.Segments() {
				names = append(names, s.Name())
			}
			assert.Equal(t, []string{"MSH", "EVN", "PID", "ZPD", "ZPI", "PV1", "NTE", "ZXT", "ZZZ"}, names)
			assert.Equal(t, "MRN1", get(t, m, "ZPD-1"))
		}},
		{"truncate by characters", []Spec{{Op: "truncate", Options: &TruncateOptions{Truncate: "PID-5.1", Length: 2}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "Mü", get(t, m, "PID-5.1"))
		}},
		{"format dates", []Spec{{Op: "format_date", Options: &DateOptions{FormatDate: "PID-7", ToFormat: "yyyy-MM-dd"}}, {Op: "format_date", Options: &DateOptions{FormatDate: "MSH-7", ToFormat: "dd/MM/yyyy HH:mm"}}}, func(t *testing.T, m *hl7.Message) {
			assert.Equal(t, "1961-06-15", get(t, m, "PID-7"))
			assert.Equal(t, "14/01/2026 08:15", get(t, m, "MSH-7"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, apply(t, compile(t, tc.specs...), adt)) })
	}
}

func TestMapFromCSV(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fac.csv"), []byte("from,to\n# hospital codes\nMCM,MAIN\n\"SUN, West\",WEST\n"), 0o644))
	p, problems := Compile([]Spec{{Op: "map", Options: &MapOptions{Map: "PV1-3.4", CSV: "fac.csv"}}}, Options{ReadFile: func(n string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, n)) }})
	require.Empty(t, problems)
	assert.Equal(t, "MAIN", get(t, apply(t, p, adt), "PV1-3.4"))
}

func TestFailuresNameTheStepNotTheValue(t *testing.T) {
	for _, spec := range []Spec{
		{Op: "map", Options: &MapOptions{Map: "PV1-3.4", Table: map[string]string{"X": "Y"}, OnMiss: "reject"}},
		{Op: "format_date", Options: &DateOptions{FormatDate: "PID-5.1", ToFormat: "yyyy-MM-dd"}},
		{Op: "set", Options: &SetOptions{Set: "OBX-5", Value: str("x")}},
		{Op: "add_segment", Options: &AddOptions{AddSegment: "ZPD|1", After: "OBX"}},
	} {
		_, err := compile(t, Spec{Op: "set", Options: &SetOptions{Set: "MSH-5", Value: str("EMR")}}, spec).Apply([]byte(adt))
		var se *StepError
		require.True(t, errors.As(err, &se), "%+v", spec)
		assert.Equal(t, 1, se.Step)
		for _, phi := range []string{"Müller", "MCM", "MRN1"} {
			assert.NotContains(t, err.Error(), phi)
		}
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, problems := Compile([]Spec{
		{}, // no operation
		SpecFrom(map[string]any{"set": "PID-5", "clear": "PID-6"}),                                // two operations
		{Op: "set", Options: &SetOptions{Set: "PID-x", Value: str("a")}},                          // bad path
		{Op: "set", Options: &SetOptions{Set: "MSH-2", Value: str("a")}},                          // delimiters
		{Op: "set", Options: &SetOptions{Set: "PID-5"}},                                           // neither value nor template
		{Op: "replace", Options: &ReplaceOptions{Replace: "PID-13", Pattern: "(", With: str("")}}, // bad regexp
		{Op: "map", Options: &MapOptions{Map: "PV1-3", OnMiss: "maybe"}},                          // no table, bad on_miss
		{Op: "truncate", Options: &TruncateOptions{Truncate: "PID-5"}},                            // no length
		{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"MSH", "nte"}}},
		{Op: "copy", Options: &CopyOptions{Copy: "PID-3"}},                  // no to
		SpecFrom(map[string]any{"clear": "PID-13", "pattern": "x"}),         // option of another step
		{Op: "format_date", Options: &DateOptions{FormatDate: "PID-7"}},     // no to_format
		{Op: "map", Options: &MapOptions{Map: "PV1-3", CSV: "missing.csv"}}, // unreadable
		{Op: "set", Options: &SetOptions{Set: "PID-2", Template: str("{{PID-3")}},
	}, Options{ReadFile: os.ReadFile})
	keys := map[string]bool{}
	for _, p := range problems {
		keys[p.Key] = true
		assert.NotEmpty(t, p.Message)
	}
	for _, k := range []string{"[0].", "[1].", "[2].set", "[3].set", "[4].set", "[5].pattern", "[6].map", "[6].on_miss",
		"[7].length", "[8].remove_segments[0]", "[8].remove_segments[1]", "[9].to", "[10].pattern", "[11].to_format", "[12].csv", "[13].template"} {
		assert.True(t, keys[k], "a problem at %s; got %v", k, problems)
	}
}

func TestRemoveSegmentsWhere(t *testing.T) {
	oru := "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1\r" +
		"PID|1||P7^^^LAB^MR||Jones^Mary||19700101|F\r" +
		"OBX|1|NM|718-7||13.2|g/dL|||||F\r" +
		"OBX|2|NM|4544-3||39.5|%|||||D\r" +
		"NTE|1||about OBX 2\r" +
		"OBX|3|NM|777-3||250|10*3/uL|||||F\r"
	d := "D"
	m := apply(t, compile(t, Spec{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"OBX"}, Where: &condition.When{Field: "OBX-11", Equals: &d}}}), oru)
	var ids []string
	for seg := range m.SegmentsNamed("OBX") {
		f, _ := seg.Field(3)
		ids = append(ids, string(f))
	}
	assert.Equal(t, []string{"718-7", "777-3"}, ids, "only the deleted result is dropped")
	assert.Equal(t, 1, m.Count(hl7.MustParsePath("NTE")))

	female := "F"
	m = apply(t, compile(t, Spec{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"NTE"}, Where: &condition.When{Field: "PID-8", Equals: &female}}}), oru)
	assert.Equal(t, 0, m.Count(hl7.MustParsePath("NTE")), "a where on another segment reads the message")

	_, problems := Compile([]Spec{{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"OBX"}, Where: &condition.When{Field: "OBX-x", Equals: &d}}}, SpecFrom(map[string]any{"clear": "PID-5", "where": map[string]any{}})}, Options{})
	keys := map[string]bool{}
	for _, p := range problems {
		keys[p.Key] = true
	}
	assert.True(t, keys["[0].where.field"], "%v", problems)
	assert.True(t, keys["[1].where"], "where belongs to remove_segments")
}

// Normalising steps for what a cleanup report finds: names in one case,
// component by component (escapes and separators untouched), in every
// repetition and every segment of the name; phone numbers in one pattern
// with a country code dropped and an extension kept; what does not fit is
// kept, cleared, or fails the step, as asked.
func TestNormalisingNamesAndPhones(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|20260114081530||ADT^A08|M1|P|2.5.1\r" +
		"PID|1||MRN1||o'BRIEN-smith^ÉLODIE^\\T\\j~ALIAS^ann&mari||19610615|F|||||+1 (555) 555.1234~555-1212 ext. 42\r" +
		"NK1|1|MCDONALD^ROSE\rNK1|2|van der BERG^jan\r"
	p := compile(t,
		Spec{Op: "name_case", Options: &CaseOptions{NameCase: "PID-5", To: "title"}},
		Spec{Op: "name_case", Options: &CaseOptions{NameCase: "NK1-2.1", To: "upper"}},
		Spec{Op: "format_phone", Options: &PhoneOptions{FormatPhone: "PID-13", Country: "1"}})
	m := apply(t, p, msg)
	assert.Equal(t, "O'Brien-Smith", get(t, m, "PID-5.1"))
	assert.Equal(t, "Élodie", get(t, m, "PID-5.2"))
	assert.Equal(t, "&j", get(t, m, "PID-5.3"), "decoded, cased, written back")
	assert.Contains(t, string(m.Bytes()), "^\\T\\j~", "the & escaped again, not a subcomponent")
	assert.Equal(t, "Alias", get(t, m, "PID-5[2].1"), "every repetition")
	assert.Equal(t, "Ann", get(t, m, "PID-5[2].2.1"), "subcomponent by subcomponent")
	assert.Equal(t, "Mari", get(t, m, "PID-5[2].2.2"))
	assert.Equal(t, "VAN DER BERG", get(t, m, "NK1[2]-2.1"), "every segment of the name")
	assert.Equal(t, "jan", get(t, m, "NK1[2]-2.2"), "only the component named")
	assert.Equal(t, "(555)555-1234", get(t, m, "PID-13[1]"), "country code dropped")
	assert.Equal(t, "555-1212 ext. 42", get(t, m, "PID-13[2]"), "7 digits do not fit: kept as it was")

	cleared := apply(t, compile(t, Spec{Op: "format_phone", Options: &PhoneOptions{FormatPhone: "PID-13", Pattern: "###.###.####", OnMismatch: "clear"}}),
		strings.Replace(msg, "555-1212 ext. 42", "555 555 1212 x42", 1))
	assert.Equal(t, "", get(t, cleared, "PID-13[1]"), "11 digits, no country given: cleared")
	assert.Equal(t, "555.555.1212X42", get(t, cleared, "PID-13[2]"), "the extension kept, as HL7 writes it")
	_, err := compile(t, Spec{Op: "format_phone", Options: &PhoneOptions{FormatPhone: "PID-13", OnMismatch: "fail"}}).Apply([]byte(msg))
	assert.ErrorIs(t, err, errNotAPhone)
	assert.NotContains(t, err.Error(), "555", "no value in the error")
	_, problems := Compile([]Spec{{Op: "name_case", Options: &CaseOptions{NameCase: "PID-5", To: "proper"}},
		{Op: "format_phone", Options: &PhoneOptions{FormatPhone: "PID-13", Pattern: "phone", Country: "+1", OnMismatch: "drop"}}}, Options{})
	keys := map[string]bool{}
	for _, p := range problems {
		keys[p.Key] = true
	}
	assert.Equal(t, map[string]bool{"[0].to": true, "[1].pattern": true, "[1].country": true, "[1].on_mismatch": true}, keys)
}
