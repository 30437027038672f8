package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
)

const goodADT = "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\r" +
	"EVN|A01|20261201083000\r" +
	"PID|1||M1^^^HOSP^MR||Nguyen^Anh||19700101|F\r" +
	"PV1|1|I|WARD^12^1\r"

func problems(t *testing.T, msg string) []Problem {
	t.Helper()
	m, err := hl7.Parse([]byte(msg))
	require.NoError(t, err)
	return Validate(m)
}

func one(t *testing.T, msg string) Problem {
	t.Helper()
	ps := problems(t, msg)
	require.Len(t, ps, 1, "%+v", ps)
	return ps[0]
}

// A message per problem kind: each reported once, at its place, with
// HL7 table 0357's code, and never with the value.
func TestValidationReportsEachProblemAtItsPlace(t *testing.T) {
	assert.Empty(t, problems(t, goodADT), "a well-formed ADT^A01")

	p := one(t, "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rEVN|A01|20261201083000\rPV1|1|I\r")
	assert.Equal(t, Problem{Location: "PID", Code: CodeSegmentSequence, Reason: "required segment PID is missing", Segment: "PID"}, p)

	ps := problems(t, "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rPID|1||M1^^^HOSP^MR||Nguyen^Anh\rEVN|A01|20261201083000\rPV1|1|I\r")
	require.NotEmpty(t, ps)
	last := ps[len(ps)-1]
	assert.Equal(t, Problem{Location: "EVN", Code: CodeSegmentSequence, Reason: "segment EVN is out of order, or not part of ADT_A01", Segment: "EVN"}, last,
		"EVN after PID is out of order (and, read in order, EVN and PV1 were missing where they belong): %+v", ps)

	p = one(t, "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rEVN|A01|20261201083000\rPID|1||||Nguyen^Anh\rPV1|1|I\r")
	assert.Equal(t, Problem{Location: "PID-3", Code: CodeRequiredMissing, Reason: "required field PID-3 (Patient Identifier List) is empty",
		Segment: "PID", SegmentRep: 1, Field: 3}, p)

	bad := map[string]struct {
		pid  string
		want Problem
	}{
		"a date that does not exist":    {"PID|1||M1^^^HOSP^MR||Nguyen^Anh||20260230|F", Problem{Location: "PID-7.1", Code: CodeDataType, Segment: "PID", SegmentRep: 1, Field: 7, FieldRep: 1, Component: 1}},
		"a sex outside table 0001":      {"PID|1||M1^^^HOSP^MR||Nguyen^Anh||19700101|X", Problem{Location: "PID-8", Code: CodeTableValue, Segment: "PID", SegmentRep: 1, Field: 8, FieldRep: 1}},
		"a set ID that is not a number": {"PID|A||M1^^^HOSP^MR||Nguyen^Anh", Problem{Location: "PID-1", Code: CodeDataType, Segment: "PID", SegmentRep: 1, Field: 1, FieldRep: 1}},
	}
	for what, c := range bad {
		msg := "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rEVN|A01|20261201083000\r" + c.pid + "\rPV1|1|I\r"
		p := one(t, msg)
		p.Reason = ""
		assert.Equal(t, c.want, p, what)
	}
	// Too many repetitions: PID-8 (sex) does not repeat.
	p = one(t, "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rEVN|A01|20261201\rPID|1||M1||N^A||19700101|F~M\rPV1|1|I\r")
	assert.Equal(t, CodeDataType, p.Code)
	assert.Equal(t, "PID-8[2]", p.Location)
	assert.Contains(t, p.Reason, "repeats more than 1")
	// Z segments are anyone's; a version after 2.7.1 is read as 2.7.1.
	assert.Empty(t, problems(t, goodADT+"ZPI|1|anything\r"))
	for _, ps := range [][]Problem{problems(t, goodADT), problems(t, "MSH|^~\\&|A|B|C|D|20261201||ADT^A01^ADT_A01|C1|P|2.8\rEVN|A01\rPID|1||M1||N^A\rPV1|1|I\r")} {
		for _, p := range ps {
			assert.NotContains(t, p.Reason, "Nguyen")
		}
	}
}

// Times: each part optional from the right, an offset, a leap second;
// dates that do not exist are refused.
func TestDateTimeFormats(t *testing.T) {
	for _, ok := range []string{"2026", "202612", "20261231", "2026123108", "202612310830", "20261231083059", "20261231083059.1234",
		"20261231083059-0500", "20260101+0100", "20241229235960", "20240229"} {
		assert.True(t, validDateTime([]byte(ok)), ok)
	}
	for _, bad := range []string{"", "26", "20261301", "20260230", "20230229", "2026123124", "202612310860", "20261231083059.", "20261231083059.12345",
		"2026-12-31", "20261231083059-5", "20261231T0830", "20260101+2400"} {
		assert.False(t, validDateTime([]byte(bad)), bad)
	}
	assert.True(t, validNumber([]byte("-12.5")))
	assert.True(t, validNumber([]byte(".5")))
	assert.False(t, validNumber([]byte("1,5")))
	assert.False(t, validNumber([]byte("")))
}

// The repository's own test messages that are whole (the others leave
// out EVN or PV1 on purpose, and are reported for it) have no problem.
func TestOwnTestMessagesHaveNoProblem(t *testing.T) {
	for _, name := range []string{"adt_a01.hl7", "adt_a01_mixed_terminators.hl7", "adt_a04_lf.hl7", "adt_a08_crlf.hl7", "oru_r01.hl7", "oru_r01_v27.hl7"} {
		f := filepath.Join("../testdata", name)
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		b, err := hl7.SplitBatch(data, hl7.Limits{})
		if err != nil {
			continue
		}
		for _, raw := range b.Messages {
			m, err := hl7.Parse(raw)
			if err != nil || m.CheckHeader() != nil {
				continue
			}
			assert.Empty(t, Validate(m), filepath.Base(f))
		}
	}
}

// ERR-2 locates a problem as the standard's ERL: PID^1^3.
func TestProblemERL(t *testing.T) {
	d := hl7.DefaultDelimiters
	assert.Equal(t, "PID^1^3", Problem{Segment: "PID", Field: 3}.ERL(d))
	assert.Equal(t, "OBX^2^5^1^1", Problem{Segment: "OBX", SegmentRep: 2, Field: 5, FieldRep: 1, Component: 1}.ERL(d))
	assert.Equal(t, "PID^1", Problem{Segment: "PID"}.ERL(d))
	assert.Equal(t, "PID^1^8^2", Problem{Segment: "PID", Field: 8, FieldRep: 2}.ERL(d))
}

// BenchmarkValidate is a 1.5 KB ORU's validation (the target: ≤ 10 µs),
// its definitions built beforehand.
//
//	go test ./hl7/spec -run '^$' -bench Validate -benchmem -count 6
func BenchmarkValidate(b *testing.B) {
	data, err := os.ReadFile("../testdata/oru_r01.hl7")
	if err != nil {
		b.Fatal(err)
	}
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	Lookup(m.Version())
	HL7Table(1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if ps := Validate(m); len(ps) != 0 {
			b.Fatal(ps)
		}
	}
}

// Dates well formed but out of range are found where they are, at their
// own precision; a date Validate refuses is not among them, nor one in
// range.
func TestDatesOutOfRange(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20261207101500||ADT^A01^ADT_A01|1|P|2.5.1\r" +
		"EVN|A01|20990101\rPID|1||M1^^^H^MR||Doe^Jo||1850|F\rPV1|1|I|||||||||||||||||||||||||||||||||||||||||20260230\rNK1|1|Doe^Al|||||||19800101\r"))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 7, 0, 0, 0, 0, time.UTC)
	var got []string
	for _, p := range DatesOutOfRange(m, lo, hi) {
		got = append(got, p.Location)
		if p.Code != CodeDataType || strings.Contains(p.Reason, "1850") || strings.Contains(p.Reason, "2099") {
			t.Errorf("%+v: code 102, and no value in the reason", p)
		}
	}
	if want := []string{"EVN-2.1", "PID-7.1"}; !slices.Equal(got, want) {
		t.Errorf("out of range: %v, want %v", got, want)
	}
}
