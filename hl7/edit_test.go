package hl7

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const editBase = "MSH|^~\\&|APP|FAC|RAPP|RFAC|20260101||ADT^A01|C1|P|2.5\rPID|1||A^^^X~B^^^Y||Doe^John\rPV1|1|I\r"

func TestSet(t *testing.T) {
	tests := []struct {
		path, value string
		want        string // the PID segment (or MSH) after the edit
		seg         int
	}{
		{"PID-5.1", "Roe", "PID|1||A^^^X~B^^^Y||Roe^John", 1},
		{"PID-5", "Jo|hn^x", `PID|1||A^^^X~B^^^Y||Jo\F\hn\S\x`, 1},
		{"PID-3[2].1", "C", "PID|1||A^^^X~C^^^Y||Doe^John", 1},
		{"PID-3[4].1", "D", "PID|1||A^^^X~B^^^Y~~D||Doe^John", 1},
		{"PID-3.4.2", "OID", "PID|1||A^^^X&OID~B^^^Y||Doe^John", 1},
		{"PID-8", "F", "PID|1||A^^^X~B^^^Y||Doe^John|||F", 1},
		{"PID-5.4", "Jr", "PID|1||A^^^X~B^^^Y||Doe^John^^Jr", 1},
		{"PID-2", "", "PID|1||A^^^X~B^^^Y||Doe^John", 1},
		{"PID-5.1", "Müller", "PID|1||A^^^X~B^^^Y||Müller^John", 1},
		{"MSH-3", "NEWAPP", "MSH|^~\\&|NEWAPP|FAC|RAPP|RFAC|20260101||ADT^A01|C1|P|2.5", 0},
		{"MSH-12.1", "2.5.1", "MSH|^~\\&|APP|FAC|RAPP|RFAC|20260101||ADT^A01|C1|P|2.5.1", 0},
		{"MSH-20", "X", "MSH|^~\\&|APP|FAC|RAPP|RFAC|20260101||ADT^A01|C1|P|2.5||||||||X", 0},
		{"PID-3", "Z", "PID|1||Z||Doe^John", 1},
	}
	for _, tt := range tests {
		t.Run(tt.path+"="+tt.value, func(t *testing.T) {
			in := []byte(editBase)
			m := mustParse(t, in)
			if err := m.Set(MustParsePath(tt.path), tt.value); err != nil {
				t.Fatal(err)
			}
			segs := strings.Split(string(m.Bytes()), "\r")
			if segs[tt.seg] != tt.want {
				t.Errorf("segment = %q\n              want %q", segs[tt.seg], tt.want)
			}
			if string(in) != editBase {
				t.Error("the edit wrote into the caller's bytes")
			}
			if got := get(t, m, tt.path); got != tt.value {
				t.Errorf("read back %q, want %q", got, tt.value)
			}
			// Everything else is unchanged and the result reparses the same.
			again := mustParse(t, m.Bytes())
			if !bytes.Equal(again.Bytes(), m.Bytes()) || again.SegmentCount() != 3 {
				t.Error("the edited message does not reparse to itself")
			}
			if get(t, m, "PV1-2") != "I" || get(t, m, "MSH-10") != "C1" {
				t.Error("an unrelated field changed")
			}
		})
	}
}

// The first edit copies the bytes a message was parsed from (the
// caller's, never written); later edits write that copy in place, without
// allocating; a clone and its original never write each other's bytes.
func TestEditsCopyOnceThenWriteInPlace(t *testing.T) {
	data := []byte(editBase)
	m := mustParse(t, data)
	name, _ := m.Raw(MustParsePath("PID-5.1"))
	if err := m.Set(MustParsePath("PID-5.1"), "Someone Else"); err != nil {
		t.Fatal(err)
	}
	if string(name) != "Doe" || string(data) != editBase {
		t.Errorf("the first edit wrote the caller's bytes: %q", name)
	}
	p5, p6 := MustParsePath("MSH-5"), MustParsePath("MSH-6")
	if allocs := testing.AllocsPerRun(50, func() {
		_ = m.Set(p5, "EMR")
		_ = m.Set(p6, "MAIN")
	}); allocs != 0 {
		t.Errorf("edits of an owned message allocate %.1f times", allocs)
	}

	c := m.Clone()
	before := string(m.Bytes())
	if err := c.Set(MustParsePath("PID-5.1"), "Roe"); err != nil {
		t.Fatal(err)
	}
	cloneBytes := c.Bytes()
	cloneBefore := string(cloneBytes)
	if err := m.Set(MustParsePath("PID-5.1"), "Poe"); err != nil {
		t.Fatal(err)
	}
	if string(cloneBytes) != cloneBefore || c.ValueString(MustParsePath("PID-5.1")) != "Roe" {
		t.Errorf("an edit of the original wrote its clone: %q", cloneBytes)
	}
	if m.ValueString(MustParsePath("PID-5.1")) != "Poe" || before == string(m.Bytes()) {
		t.Errorf("original: %q", m.Bytes())
	}

	// CloneInto reuses c: what c returned before stays as it was.
	m.CloneInto(c)
	if err := c.Set(MustParsePath("PID-5.1"), "Zoe"); err != nil {
		t.Fatal(err)
	}
	if string(cloneBytes) != cloneBefore {
		t.Errorf("CloneInto and an edit wrote bytes the clone returned before: %q", cloneBytes)
	}
	if c.ValueString(MustParsePath("PID-5.1")) != "Zoe" || m.ValueString(MustParsePath("PID-5.1")) != "Poe" {
		t.Errorf("after CloneInto: clone %q, original %q", c.Bytes(), m.Bytes())
	}
}

// Every edit leaves the index a fresh parse of its bytes would build.
func TestEditIndexMatchesAFreshParse(t *testing.T) {
	m := mustParse(t, readTestdata(t, "oru_r01.hl7"))
	edits := []struct{ path, value string }{
		{"MSH-5", "EMR"}, {"PID-5.1", "A much longer family name than before"}, {"OBX[2]-5", "x"},
		{"PID-3[3].4", "NEW"}, {"OBX-11", ""}, {"PV1-7.2.1", "sub"}, {"MSH-6", "A^B"},
	}
	for _, e := range edits {
		if err := m.Set(MustParsePath(e.path), e.value); err != nil {
			t.Fatalf("set %s: %v", e.path, err)
		}
		fresh := mustParse(t, slices.Clone(m.Bytes()))
		if !slices.Equal(m.segs, fresh.segs) || !slices.Equal(m.seps, fresh.seps) {
			t.Fatalf("after set %s: index differs from a fresh parse", e.path)
		}
	}
}

func TestSetRawAndErrors(t *testing.T) {
	m := mustParse(t, []byte(editBase))
	if err := m.SetRaw(MustParsePath("PID-5"), []byte("A^B~C^D")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, m, "PID-5[2].2"); got != "D" {
		t.Errorf("PID-5[2].2 = %q after SetRaw", got)
	}
	for _, p := range []string{"MSH-1", "MSH-2", "PID", "ZZZ-1"} {
		var pe *PathError
		if err := m.Set(MustParsePath(p), "x"); !errors.As(err, &pe) {
			t.Errorf("Set(%s) err = %v, want *PathError", p, err)
		}
	}
	var pe *PathError
	if err := m.SetRaw(MustParsePath("PID-5"), []byte("a\rMSH|x")); !errors.As(err, &pe) {
		t.Errorf("SetRaw with CR err = %v", err)
	}
	// A raw value that would break a limit is refused and the message is unchanged.
	var lm Message
	if err := lm.ParseWith([]byte(editBase), Limits{MaxRepetitions: 3}); err != nil {
		t.Fatal(err)
	}
	before := string(lm.Bytes())
	if err := lm.SetRaw(MustParsePath("PID-9"), []byte("a~b~c~d~e")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	if string(lm.Bytes()) != before || get(t, &lm, "PID-5.1") != "Doe" {
		t.Error("a refused edit changed the message")
	}
}

func TestClearAndDelete(t *testing.T) {
	tests := []struct {
		op, path string
		want     string
	}{
		{"clear", "PID-5.1", "PID|1||A^^^X~B^^^Y||^John"},
		{"clear", "PID-9", "PID|1||A^^^X~B^^^Y||Doe^John"},
		{"delete", "PID-5.2", "PID|1||A^^^X~B^^^Y||Doe"},
		{"delete", "PID-5.1", "PID|1||A^^^X~B^^^Y||^John"},
		{"delete", "PID-5", "PID|1||A^^^X~B^^^Y|"},
		{"delete", "PID-3[1]", "PID|1||B^^^Y||Doe^John"},
		{"delete", "PID-3[2]", "PID|1||A^^^X||Doe^John"},
		{"delete", "PID-3[3]", "PID|1||A^^^X~B^^^Y||Doe^John"},
		{"delete", "PID-3.4", "PID|1||A^^~B^^^Y||Doe^John"},
		{"delete", "PID-3", "PID|1||||Doe^John"},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.path, func(t *testing.T) {
			m := mustParse(t, []byte(editBase))
			p := MustParsePath(tt.path)
			var err error
			if tt.op == "clear" {
				err = m.Clear(p)
			} else {
				err = m.Delete(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(string(m.Bytes()), "\r")[1]; got != tt.want {
				t.Errorf("PID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSegmentEdits(t *testing.T) {
	for _, term := range []string{"\r", "\n", "\r\n"} {
		for _, final := range []bool{true, false} {
			base := strings.ReplaceAll(editBase, "\r", term)
			if !final {
				base = strings.TrimSuffix(base, term)
			}
			m := mustParse(t, []byte(base))
			if err := m.AppendSegment([]byte("ZPD|1|x")); err != nil {
				t.Fatal(err)
			}
			if err := m.InsertSegment(1, []byte("EVN|A01")); err != nil {
				t.Fatal(err)
			}
			want := []string{"MSH", "EVN", "PID", "PV1", "ZPD"}
			var got []string
			for s := range m.Segments() {
				got = append(got, s.Name())
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("term %q final %v: segments %v, want %v", term, final, got, want)
			}
			if strings.HasSuffix(string(m.Bytes()), term) != final {
				t.Errorf("term %q: the final terminator style changed", term)
			}
			if strings.Contains(string(m.Bytes()), "\r") && term == "\n" {
				t.Errorf("LF message got a CR: %q", m.Bytes())
			}
			if err := m.Delete(MustParsePath("PID")); err != nil {
				t.Fatal(err)
			}
			if err := m.RemoveSegment(1); err != nil { // EVN
				t.Fatal(err)
			}
			if m.SegmentCount() != 3 || get(t, m, "ZPD-2") != "x" || get(t, m, "PV1-2") != "I" || m.Has(MustParsePath("PID")) {
				t.Errorf("after removals: %q", m.Bytes())
			}
		}
	}
	m := mustParse(t, []byte(editBase))
	for _, bad := range [][]byte{[]byte("MSH|x"), []byte("ZP|1"), []byte("ZPD|a\rb"), []byte("zpd|1"), []byte("ZPDX")} {
		if err := m.AppendSegment(bad); err == nil {
			t.Errorf("AppendSegment(%q) succeeded", bad)
		}
	}
	if err := m.InsertSegment(0, []byte("EVN|1")); err == nil {
		t.Error("inserted before MSH")
	}
	if err := m.RemoveSegment(0); err == nil {
		t.Error("removed MSH")
	}
}

func TestAppendTerminated(t *testing.T) {
	m := mustParse(t, readTestdata(t, "adt_a01_mixed_terminators.hl7"))
	got := string(m.AppendTerminated(nil, "\r"))
	want := "MSH|^~\\&|REGADT|MCM|IFENG|SUNNYVALE|20260114111500||ADT^A01|MSG00010|P|2.3.1\rEVN|A01|20260114111500\rPID|1||55501^^^MCM^MR||Doe^John\rPV1|1|E\r"
	if got != want {
		t.Errorf("AppendTerminated = %q\nwant %q", got, want)
	}
}

func TestCloneEditsLeaveTheOriginal(t *testing.T) {
	orig := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||X^^^H||Doe^Jane\rZPI|1\r"
	m, err := Parse([]byte(orig))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if err := c.Set(MustParsePath("PID-5.1"), "Roe"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSegment(2); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Bytes()); got != orig {
		t.Errorf("original changed: %q", got)
	}
	if got := m.ValueString(MustParsePath("PID-5.1")); got != "Doe" {
		t.Errorf("original reads %q", got)
	}
	if m.SegmentCount() != 3 || c.SegmentCount() != 2 {
		t.Errorf("segments: original %d, clone %d", m.SegmentCount(), c.SegmentCount())
	}
	if got := string(c.Bytes()); got != "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||X^^^H||Roe^Jane\r" {
		t.Errorf("clone: %q", got)
	}
}

// RemoveSegment updates the index in place: it must equal a fresh parse
// of the bytes it leaves, for every segment of every test message.
func TestRemoveSegmentIndexMatchesAFreshParse(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join("testdata", e.Name()))
		first, err := Parse(data)
		if err != nil {
			continue // batches and the like
		}
		for i := 1; i < first.SegmentCount(); i++ {
			m, _ := Parse(data)
			if err := m.RemoveSegment(i); err != nil {
				t.Fatalf("%s: remove %d: %v", e.Name(), i, err)
			}
			fresh, err := Parse(slices.Clone(m.Bytes()))
			if err != nil {
				t.Fatalf("%s: remove %d leaves bytes that do not parse: %v", e.Name(), i, err)
			}
			if !slices.Equal(m.segs, fresh.segs) || !slices.Equal(m.seps, fresh.seps) {
				t.Fatalf("%s: remove %d: index differs from a fresh parse", e.Name(), i)
			}
		}
	}
}
