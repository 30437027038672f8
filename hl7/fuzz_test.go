package hl7

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds every testdata file and a few hand-made edge cases.
func addSeeds(f *testing.F, with func(f *testing.F, data []byte)) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		with(f, data)
	}
	for _, s := range []string{"", "MSH", "MSH|", "MSH|^~\\&", "MSH|^~\\\\&|A\r", "MSH$%~\\&$A\nPID$1\r\n", "\xEF\xBB\xBFMSH|^~\\&|\r\rPID|1",
		"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rBTS|1\rFTS|1", "MSH|^~\\&#|A|\\P\\|\\X0D\\", "MSH|&&&&|x"} {
		with(f, []byte(s))
	}
}

// FuzzParse: parsing never panics; a parsed message encodes to its input
// and every accessor and the ACK work on it.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(f *testing.F, d []byte) { f.Add(d) })
	paths := []Path{PathMSH9, PathMSH10, PathMSH18, MustParsePath("PID-3[2].4.2"), MustParsePath("OBX[3]-5"), MustParsePath("MSH-1"), MustParsePath("ZZZ")}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(m.Bytes(), bytes.TrimPrefix(data, utf8BOM)) {
			t.Fatal("Bytes() is not the input")
		}
		if j, err := EncodeJSON(m); err != nil || !json.Valid(j) {
			t.Fatalf("EncodeJSON: %v, valid %v", err, json.Valid(j))
		}
		for _, p := range paths {
			raw, ok := m.Raw(p)
			if ok && !bytes.Contains(m.Bytes(), raw) {
				t.Fatalf("%s is not a slice of the message", p)
			}
			_ = m.Value(p)
			_ = m.Count(p)
			for range m.Repetitions(p) {
			}
		}
		n := 0
		for s := range m.Segments() {
			n++
			for i := 1; i <= s.FieldCount(); i++ {
				if _, ok := s.Field(i); !ok && i > 2 {
					t.Fatalf("field %d of %d absent", i, s.FieldCount())
				}
			}
		}
		if n != m.SegmentCount() {
			t.Fatal("segment count disagrees with iteration")
		}
		_ = m.AppendTerminated(nil, "\r")
		_, _ = ParseAck(data)
	})
}

// FuzzEditEncode: an edit either fails with a typed error and leaves the
// message as it was, or gives bytes that reparse and read back the value.
func FuzzEditEncode(f *testing.F) {
	addSeeds(f, func(f *testing.F, d []byte) {
		f.Add(d, "PID-5.1", "Müller|x")
		f.Add(d, "MSH-3", "")
		f.Add(d, "OBX[2]-5[3].2.1", "a^b~c")
	})
	f.Fuzz(func(t *testing.T, data []byte, path, value string) {
		p, err := ParsePath(path)
		if err != nil {
			return
		}
		m, err := Parse(data)
		if err != nil {
			return
		}
		before := string(m.Bytes())
		slow, _ := Parse(data)
		slowEdits = true
		slowErr := slow.Set(p, value)
		slowEdits = false
		if err := m.Set(p, value); err != nil {
			var pe *PathError
			if !errors.As(err, &pe) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Set: untyped error %v", err)
			}
			if string(m.Bytes()) != before {
				t.Fatal("a failed Set changed the message")
			}
			return
		}
		if slowErr != nil || !bytes.Equal(slow.Bytes(), m.Bytes()) {
			t.Fatalf("the quick edit wrote %q, the general one %q (%v)", m.Bytes(), slow.Bytes(), slowErr)
		}
		again, err := Parse(m.Bytes())
		if err != nil {
			t.Fatalf("edited message does not reparse: %v", err)
		}
		if !bytes.Equal(again.Bytes(), m.Bytes()) || again.SegmentCount() != m.SegmentCount() {
			t.Fatal("reparse differs from the edited message")
		}
		if got, want := fieldsOf(m), fieldsOf(again); got != want {
			t.Fatalf("the edited message's index reads %q, a fresh parse %q", got, want)
		}
		if !strings.ContainsAny(value, "\r\n") {
			if got := again.ValueString(p); got != value {
				t.Fatalf("read back %q, want %q", got, value)
			}
		}
		if err := m.Delete(p); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := Parse(m.Bytes()); err != nil {
			t.Fatalf("message does not reparse after Delete: %v", err)
		}
	})
}

// FuzzSplitBatch: splitting never panics and every message is a piece of
// the input that starts with MSH.
func FuzzSplitBatch(f *testing.F) {
	addSeeds(f, func(f *testing.F, d []byte) { f.Add(d) })
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := SplitBatch(data, Limits{})
		if err != nil {
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		total := 0
		for _, msg := range b.Messages {
			total += len(msg)
			if !bytes.HasPrefix(msg, []byte("MSH")) || !bytes.Contains(data, msg) {
				t.Fatalf("message %q is not a piece of the input starting with MSH", msg)
			}
			_, _ = Parse(msg)
		}
		if total > len(data) {
			t.Fatal("messages hold more bytes than the input")
		}
	})
}

// FuzzAck: every ACK built, for parsed and unparseable input alike,
// parses back with the right code and control ID.
func FuzzAck(f *testing.F) {
	addSeeds(f, func(f *testing.F, d []byte) { f.Add(d, "reason | ^ text") })
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		rej, err := ParseAck(BuildRejectAck(data, AckOptions{Text: text}))
		if err != nil || rej.Positive() {
			t.Fatalf("reject ACK: %v, positive %v", err, rej != nil && rej.Positive())
		}
		m, err := Parse(data)
		if err != nil {
			return
		}
		for _, o := range []Outcome{Accepted, Errored, Rejected} {
			for _, mode := range []AckMode{AckModeAuto, AckModeOriginal, AckModeEnhanced} {
				a, err := ParseAck(BuildAck(m, AckOptions{Outcome: o, Mode: mode, Text: text}))
				if err != nil {
					t.Fatalf("ACK does not parse: %v", err)
				}
				want := mode
				if mode == AckModeAuto {
					want = ModeFor(m)
				}
				if a.Code != o.Code(want) || a.ControlID != m.ControlID() {
					t.Fatalf("ACK reads %s %q, want %s %q", a.Code, a.ControlID, o.Code(want), m.ControlID())
				}
				if !strings.ContainsAny(text, "\r\n") && a.Text != text {
					t.Fatalf("MSA-3 = %q, want %q", a.Text, text)
				}
			}
		}
	})
}

// fieldsOf is every field of m as its index reads it, one a line.
func fieldsOf(m *Message) string {
	var b strings.Builder
	for seg := range m.Segments() {
		for n := 1; n <= seg.FieldCount(); n++ {
			f, _ := seg.Field(n)
			b.Write(f)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String()
}
