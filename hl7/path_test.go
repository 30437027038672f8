package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
	}{
		{"PID", Path{Segment: "PID"}},
		{"OBX[3]", Path{Segment: "OBX", Occurrence: 3}},
		{"PID-5", Path{Segment: "PID", Field: 5}},
		{"PID-5.1", Path{Segment: "PID", Field: 5, Component: 1}},
		{"PID-3[2].1", Path{Segment: "PID", Field: 3, Repetition: 2, Component: 1}},
		{"OBX[3]-5", Path{Segment: "OBX", Occurrence: 3, Field: 5}},
		{"PID-3.4.2", Path{Segment: "PID", Field: 3, Component: 4, Subcomponent: 2}},
		{"MSH-9.2", Path{Segment: "MSH", Field: 9, Component: 2}},
		{"PID.5.1", Path{Segment: "PID", Field: 5, Component: 1}},
		{"ZP1-12[10].3.4", Path{Segment: "ZP1", Field: 12, Repetition: 10, Component: 3, Subcomponent: 4}},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		tt.want.text = tt.in
		if got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
	for _, bad := range []string{"", "PI", "pid-5", "PID-", "PID-0", "PID-5.", "PID-5.0", "PID[0]-1", "PID[2", "PID-3[x]", "PID-3[2]x",
		"PID-5.1.2.3", "PID_5", "PID-1234567", "MSH-2.1", "MSH-1[2]", "PID-5 ", "P D-1"} {
		_, err := ParsePath(bad)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("ParsePath(%q) err = %v, want *PathError", bad, err)
		}
	}
}

func TestPathParsingAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { _, _ = ParsePath("OBX[3]-5[2].1.2") })
	if allocs != 0 {
		t.Errorf("ParsePath allocated %.0f times", allocs)
	}
}

func TestSegmentsAndRepetitions(t *testing.T) {
	m := mustParse(t, readTestdata(t, "oru_r01.hl7"))
	var names []string
	for s := range m.Segments() {
		names = append(names, s.Name())
	}
	if len(names) != 14 || names[0] != "MSH" || names[13] != "SPM" {
		t.Errorf("segments = %v", names)
	}
	n := 0
	for s := range m.SegmentsNamed("OBX") {
		n++
		if f, _ := s.Field(1); string(f) != string(rune('0'+n)) {
			t.Errorf("OBX #%d has OBX-1 %q", n, f)
		}
	}
	if n != 7 || m.Count(MustParsePath("OBX")) != 7 {
		t.Errorf("OBX count = %d / %d, want 7", n, m.Count(MustParsePath("OBX")))
	}
	a := mustParse(t, readTestdata(t, "adt_a01.hl7"))
	p := MustParsePath("PID-3")
	if got := a.Count(p); got != 3 {
		t.Errorf("Count(PID-3) = %d, want 3", got)
	}
	var reps []string
	for i, r := range a.Repetitions(p) {
		if i != len(reps)+1 {
			t.Errorf("repetition number %d out of order", i)
		}
		reps = append(reps, string(r))
	}
	if len(reps) != 3 || reps[1] != "987-65-4320^^^SSA^SS" {
		t.Errorf("repetitions = %q", reps)
	}
	if got := a.Count(MustParsePath("PID-99")); got != 0 {
		t.Errorf("Count of an absent field = %d", got)
	}
	if f, ok := a.Raw(MustParsePath("MSH-1")); !ok || string(f) != "|" {
		t.Errorf("MSH-1 = %q, %v", f, ok)
	}
	msh := Segment{a, 0}
	if msh.FieldCount() != 18 {
		t.Errorf("MSH FieldCount = %d, want 18", msh.FieldCount())
	}
	if f, _ := msh.Field(2); string(f) != `^~\&` {
		t.Errorf("MSH field 2 = %q", f)
	}
}

func TestParseTime(t *testing.T) {
	for v, want := range map[string]string{
		"2026":                     "2026-01-01T00:00:00Z",
		"20260114":                 "2026-01-14T00:00:00Z",
		"202601140815":             "2026-01-14T08:15:00Z",
		"20260114081530.1234-0500": "2026-01-14T08:15:30.1234-05:00",
		"20260114081530":           "2026-01-14T08:15:30Z",
	} {
		got, err := ParseTime(v)
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", v, got.Format(time.RFC3339Nano), err, want)
		}
	}
	for _, bad := range []string{"", "2026-01-14", "20261340", "abc"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestParseTimeInReadsAZonelessValueInTheGivenZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	for v, want := range map[string]string{
		"202601140815":        "2026-01-14T08:15:00-05:00", // winter: EST
		"202607140815":        "2026-07-14T08:15:00-04:00", // summer: EDT
		"202601140815+0100":   "2026-01-14T08:15:00+01:00", // its own offset wins
		"20260714081530.5-00": "",
	} {
		got, err := ParseTimeIn(v, ny)
		if want == "" {
			if err == nil {
				t.Errorf("ParseTimeIn(%q) accepted", v)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("ParseTimeIn(%q) = %v, %v; want %s", v, got.Format(time.RFC3339Nano), err, want)
		}
	}
}

func TestValuesWalksOccurrencesAndRepetitions(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.5\rPID|1||X1^^^H~X2^^^O\rOBX|1||||a\rOBX|2||||b\\S\\c\rOBX|3\r"))
	if err != nil {
		t.Fatal(err)
	}
	collect := func(path string) []string {
		var out []string
		for q, v := range m.Values(MustParsePath(path)) {
			out = append(out, fmt.Sprintf("%d/%d=%s", q.Occurrence, q.Repetition, v))
		}
		return out
	}
	for path, want := range map[string][]string{
		"OBX-5":      {"1/1=a", "2/1=b^c"}, // the third OBX has no field 5: skipped
		"OBX[2]-5":   {"2/1=b^c"},
		"PID-3.4":    {"1/1=H", "1/2=O"},
		"PID-3[2].1": {"1/2=X2"},
		"ZZZ-1":      nil,
	} {
		if got := collect(path); !slices.Equal(got, want) {
			t.Errorf("Values(%s) = %q, want %q", path, got, want)
		}
	}
}

// TestValuesAgreesWithValue: the one-walk Values yields exactly what
// addressing each occurrence and repetition with Count and Value gives,
// over every testdata message and paths of every depth.
func TestValuesAgreesWithValue(t *testing.T) {
	paths := []string{"MSH-1", "MSH-2", "MSH-9", "MSH-9.2", "PID-3", "PID-3.1", "PID-3.4.1", "PID-5.1", "PID-11.3",
		"PID-3[2].1", "OBX-5", "OBX-3.1", "OBX[2]-5", "OBX-11", "NTE-3", "EVN-2", "ZZZ-1", "PV1-7.2.1"}
	for file, m := range testMessages(t) {
		for _, path := range paths {
			p := MustParsePath(path)
			var got, want []string
			for q, v := range m.Values(p) {
				got = append(got, fmt.Sprintf("%d/%d=%q", q.Occurrence, q.Repetition, v))
			}
			first, last := p.Occurrence, p.Occurrence
			if first == 0 {
				first, last = 1, m.Count(Path{Segment: p.Segment})
			}
			for occ := first; occ <= last; occ++ {
				q := p
				q.Occurrence = occ
				if p.Repetition != 0 {
					if m.Has(q) {
						want = append(want, fmt.Sprintf("%d/%d=%q", occ, q.Repetition, m.Value(q)))
					}
					continue
				}
				for rep, n := 1, m.Count(q); rep <= n; rep++ {
					q.Repetition = rep
					want = append(want, fmt.Sprintf("%d/%d=%q", occ, rep, m.Value(q)))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: Values(%s) = %q, want %q", file, path, got, want)
			}
		}
	}
}

// A segment's Value is the message's Value of the same path at that
// segment's occurrence, for every field, repetition and component.
func TestSegmentValueAgreesWithValue(t *testing.T) {
	checked := 0
	for file, m := range testMessages(t) {
		occ := map[string]int{}
		for seg := range m.Segments() {
			name := seg.Name()
			occ[name]++
			for f := 1; f <= seg.FieldCount()+1; f++ {
				for _, rest := range []string{"", ".1", ".2", ".3.1", "[2]", "[2].1"} {
					p, err := ParsePath(fmt.Sprintf("%s-%d%s", name, f, rest))
					if err != nil {
						continue // MSH-1.1 and the like
					}
					q := p
					q.Occurrence = occ[name]
					if got, want := seg.Value(p), m.Value(q); !bytes.Equal(got, want) {
						t.Errorf("%s: %s[%d]-%d%s: segment's %q, message's %q", file, name, occ[name], f, rest, got, want)
					}
					checked++
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d values checked", checked)
	}
}

// testMessages are the messages of testdata/*.hl7 by file (batch files
// and the like, not one message, left out).
func testMessages(t *testing.T) iter.Seq2[string, *Message] {
	t.Helper()
	files, err := filepath.Glob("testdata/*.hl7")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	return func(yield func(string, *Message) bool) {
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := Parse(data); err == nil && !yield(file, m) {
				return
			}
		}
	}
}
