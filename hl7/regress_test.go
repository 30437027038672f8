package hl7

// Regression tests for the eight defects found in github.com/lenaten/hl7
// (../shared/notes/hl7-v2.md), the library the design first named. Each
// test states the defect and checks that this package does not have it.

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// 1. It counted characters but sliced bytes: after "Müller" every later
// field and segment was misaligned.
func TestLenaten1NonASCIIKeepsAlignment(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1||42||Müller^Zoë^Ø||19700101|F\rPV1|1|I|ÅÄÖ^ß\r"))
	for path, want := range map[string]string{
		"PID-5.1": "Müller", "PID-5.3": "Ø", "PID-7": "19700101", "PID-8": "F", "PV1-3.2": "ß", "PV1-2": "I",
	} {
		if got := get(t, m, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

// 2. The escape character swallowed the next delimiter, merging NTE-3 and
// NTE-4, and escapes were never decoded.
func TestLenaten2EscapeDoesNotSwallowDelimiter(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rNTE|2|L|Result \\F\\|X\r"))
	if raw, _ := m.Raw(MustParsePath("NTE-3")); string(raw) != `Result \F\` {
		t.Errorf("raw NTE-3 = %q", raw)
	}
	if got := get(t, m, "NTE-3"); got != "Result |" {
		t.Errorf("decoded NTE-3 = %q, want %q", got, "Result |")
	}
	if got := get(t, m, "NTE-4"); got != "X" {
		t.Errorf("NTE-4 = %q, want X", got)
	}
}

// 3. Whether Parse failed depended on the spare capacity of the input
// slice. Here the bytes past len are garbage; results must not change, and
// edits must never write into them.
func TestLenaten3SpareCapacityIrrelevant(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1||42||Doe^Jane\r"
	for _, spare := range []int{0, 1, 7, 4096} {
		buf := make([]byte, len(msg), len(msg)+spare)
		copy(buf, msg)
		full := buf[:cap(buf)]
		for i := len(msg); i < len(full); i++ {
			full[i] = '|'
		}
		m := mustParse(t, buf)
		if m.SegmentCount() != 2 || get(t, m, "PID-5.2") != "Jane" {
			t.Fatalf("spare %d: %d segments", spare, m.SegmentCount())
		}
		if err := m.Set(MustParsePath("PID-5.2"), "Janet"); err != nil {
			t.Fatal(err)
		}
		if err := m.AppendSegment([]byte("ZZZ|1")); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg || strings.Count(string(full[len(msg):]), "|") != spare {
			t.Errorf("spare %d: an edit wrote into the caller's slice", spare)
		}
	}
}

// 4. The last field of each segment kept the CR; LF-only input was one
// segment; CRLF put "\n" into segment names.
func TestLenaten4Terminators(t *testing.T) {
	for _, term := range []string{"\r", "\n", "\r\n"} {
		data := strings.ReplaceAll("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rEVN|A01\rPID|1||42\r", "\r", term)
		m := mustParse(t, []byte(data))
		if m.SegmentCount() != 3 {
			t.Errorf("%q: %d segments, want 3", term, m.SegmentCount())
		}
		if got := get(t, m, "PID-3"); got != "42" {
			t.Errorf("%q: last field = %q", term, got)
		}
		if got := get(t, m, "MSH-12"); got != "2.5" {
			t.Errorf("%q: MSH-12 = %q", term, got)
		}
		for s := range m.Segments() {
			if strings.ContainsAny(s.Name(), "\r\n") || strings.ContainsAny(string(s.Bytes()), "\r\n") {
				t.Errorf("%q: segment %q holds a terminator", term, s.Bytes())
			}
		}
	}
}

// 5. Set rewrote MSH as MSH|||^~\&, turned repetitions into fields and did
// not escape values ("Jo|hn" injected a field).
func TestLenaten5SetKeepsStructure(t *testing.T) {
	in := "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1||A~B~C||Doe^Jo\r"
	m := mustParse(t, []byte(in))
	if err := m.Set(MustParsePath("MSH-3"), "NEW"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(MustParsePath("PID-3[2]"), "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(MustParsePath("PID-5.2"), "Jo|hn"); err != nil {
		t.Fatal(err)
	}
	want := "MSH|^~\\&|NEW|B|C|D|1||ADT^A01|X|P|2.5\rPID|1||A~b~C||Doe^Jo\\F\\hn\r"
	if string(m.Bytes()) != want {
		t.Errorf("after Set:\n%q\nwant\n%q", m.Bytes(), want)
	}
	if get(t, m, "PID-5.2") != "Jo|hn" || get(t, m, "PID-6") != "" || m.Count(MustParsePath("PID-3")) != 3 {
		t.Error("the value was not kept as data")
	}
}

// 6. Its ACK could not be parsed back.
func TestLenaten6AcksParseBack(t *testing.T) {
	for _, f := range []string{"adt_a01.hl7", "adt_a04_lf.hl7", "adt_a08_custom_delims.hl7", "oru_r01_v27.hl7"} {
		m := mustParse(t, readTestdata(t, f))
		for _, o := range []Outcome{Accepted, Errored, Rejected} {
			ack := BuildAck(m, AckOptions{Outcome: o, Text: "reason"})
			a, err := ParseAck(ack)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if a.ControlID != m.ControlID() || a.Code != o.Code(ModeFor(m)) {
				t.Errorf("%s: read back %s %q", f, a.Code, a.ControlID)
			}
		}
	}
}

// 7. Its stream decoder did one Read per message and overwrote its buffer
// past 100 KB. Reads over TCP are package mllp's; here: a message well past
// 100 KB parses whole, its last segment intact.
func TestLenaten7LargeMessageIntact(t *testing.T) {
	data := bigORU(200 << 10)
	m := mustParse(t, data)
	last := Segment{m, m.SegmentCount() - 1}
	if last.Name() != "NTE" || get(t, m, "NTE-3") != "end of report" {
		t.Errorf("last segment %q", last.Name())
	}
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("round trip changed a large message")
	}
}

// 8. A NUL byte silently ended the message; 1 MB of "~" allocated 386 MB;
// some paths panicked.
func TestLenaten8NULLimitsAndNoPanics(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rNTE|1|\x00|after\rPID|1\r"))
	if m.SegmentCount() != 3 || get(t, m, "NTE-3") != "after" {
		t.Errorf("a NUL byte ended the message: %d segments", m.SegmentCount())
	}

	tilde := append([]byte("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rNTE|1|"), bytes.Repeat([]byte("~"), 1<<20)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Parse(tilde)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 MB of ~: err = %v, want ErrTooLarge", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("1 MB of ~ allocated %d bytes", grew)
	}
	// Within the limits, memory stays a small multiple of the input.
	pipes := append([]byte("MSH|^~\\&|A\r"), bytes.Repeat([]byte("NTE|||||||||\r"), 5000)...)
	runtime.ReadMemStats(&before)
	if _, err := Parse(pipes); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(6*len(pipes)) {
		t.Errorf("%d bytes of separators allocated %d bytes", len(pipes), grew)
	}

	odd := []string{"PID-999999", "OBX[999999]-1", "MSH-1", "MSH-2", "MSH-999.9.9", "ZZZ[2]-3[4].5.6", "PID-5[99].99.99"}
	for _, p := range odd {
		path := MustParsePath(p)
		_, _ = m.Raw(path)
		_ = m.Value(path)
		_ = m.Count(path)
		for range m.Repetitions(path) {
		}
	}
}

// bigORU builds an ORU^R01 of about size bytes: many OBX segments.
func bigORU(size int) []byte {
	var b bytes.Buffer
	b.WriteString("MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01^ORU_R01|BIG-0001|P|2.5.1\r")
	b.WriteString("PID|1||P1^^^LABFAC^MR||Large^Larry||19500101|M\r")
	b.WriteString("OBR|1|ORD1|FIL1|24331-1^Lipid panel^LN|||20260114113000\r")
	for i := 1; b.Len() < size-64; i++ {
		b.WriteString("OBX|")
		b.WriteString(itoa(i))
		b.WriteString("|NM|2093-3^Cholesterol [Mass/volume] in Serum or Plasma^LN||")
		b.WriteString(itoa(150 + i%90))
		b.WriteString("|mg/dL|<200|N|||F|||20260114110000\r")
	}
	b.WriteString("NTE|1|L|end of report\r")
	return b.Bytes()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
