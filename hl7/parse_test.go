package hl7

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file                         string
		segments                     int
		typ, trigger, structure, ctl string
		version, term                string
		values                       map[string]string // path -> decoded value
	}{
		{"adt_a01.hl7", 7, "ADT", "A01", "ADT_A01", "MSG00001", "2.5.1", "\r", map[string]string{
			"MSH-1":        "|",
			"MSH-2":        `^~\&`,
			"MSH-4":        "MCM^2.16.840.1.113883.19.3.1^ISO",
			"MSH-4.2":      "2.16.840.1.113883.19.3.1",
			"PID-3[2].1":   "987-65-4320",
			"PID-3[3].4":   "STATE",
			"PID-3.4.2":    "2.16.840.1.113883.19.3.1",
			"PID-3[1].4.3": "ISO",
			"PID-5.1":      "Müller",
			"PID-5[2].2":   "Jose",
			"PID-11.2":     "Apt |3",
			"PID-11.3":     "Köln",
			"PID-13[2].4":  "jose.mueller@example.org",
			"AL1-5":        "Hives & rash",
			"ZPD-2.2":      "Very important patient",
			"PV1-41":       "20260114081500",
			"MSH-18":       "UNICODE UTF-8",
			"PID-99":       "",
			"ZZZ-1":        "",
		}},
		{"adt_a04_lf.hl7", 4, "ADT", "A04", "ADT_A01", "A04-778812", "2.3", "\n", map[string]string{
			"PID-5.2": "Siobhán", "PV1-7.2": "Nguyen", "PV1-7.7": "MD",
		}},
		{"adt_a08_crlf.hl7", 5, "ADT", "A08", "ADT_A01", "MSG00008", "2.4", "\r\n", map[string]string{
			"PID-13": "+49 221 5551234", "ZPD-3": "N", "PV1-3.4": "MCM",
		}},
		{"adt_a08_custom_delims.hl7", 3, "ADT", "A08", "ADT_A01", "MSG00009", "2.4", "\r", map[string]string{
			"MSH-1": "$", "MSH-2": `%~\&`, "PID-3[2].1": "ALT77", "PID-3.4": "MCM", "PID-5.2": "Jane",
		}},
		{"adt_a01_mixed_terminators.hl7", 4, "ADT", "A01", "", "MSG00010", "2.3.1", "\r", map[string]string{
			"EVN-2": "20260114111500", "PID-5.1": "Doe", "PV1-2": "E",
		}},
		{"oru_r01_v27.hl7", 5, "ORU", "R01", "ORU_R01", "LAB-27-0001", "2.7", "\r", map[string]string{
			"MSH-2": `^~\&#`, "NTE-3": "Trunc char # escaped#here", "OBX-5": "13.2",
		}},
		{"oru_r01.hl7", 14, "ORU", "R01", "ORU_R01", "CNTRL-3456", "2.5.1", "\r", map[string]string{
			"OBX[3]-5":   "13.8",
			"OBX[3]-3.2": "Hemoglobin [Mass/volume] in Blood^LN"[:len("Hemoglobin [Mass/volume] in Blood")],
			"OBX[7]-5":   `Specimen slightly hemolyzed\.br\Result verified & released`,
			"NTE-3":      "Reference ranges per ELAB-3 method 2025-07 | fasting sample",
			"OBX[1]-5.2": "182",
			"OBX[8]-5":   "",
			"PID-5":      "Everywoman^Eve^E^^^^L",
			"PID.5.1":    "Everywoman",
			"MSH-9.3":    "ORU_R01",
			"PID-3.4.2":  "2.16.840.1.113883.19.3.2.1",
			"OBR-32.7":   "",
		}},
		{"doubled_backslash.hl7", 2, "ADT", "A08", "", "DBL-001", "2.3", "\r", map[string]string{
			"MSH-3": "SENDER", "PID-5.2": "Richard",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, tt.file)
			m := mustParse(t, data)
			if got := m.SegmentCount(); got != tt.segments {
				t.Errorf("segments = %d, want %d", got, tt.segments)
			}
			for _, c := range []struct{ name, got, want string }{
				{"Type", m.Type(), tt.typ}, {"Trigger", m.Trigger(), tt.trigger},
				{"Structure", m.Structure(), tt.structure}, {"ControlID", m.ControlID(), tt.ctl},
				{"Version", m.Version(), tt.version}, {"Terminator", m.Terminator(), tt.term},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			for path, want := range tt.values {
				if got := get(t, m, path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			if !bytes.Equal(m.Bytes(), data) {
				t.Errorf("Bytes() differs from the input")
			}
			if err := m.CheckHeader(); err != nil {
				t.Errorf("CheckHeader: %v", err)
			}
		})
	}
}

func TestHeaderAccessors(t *testing.T) {
	m := mustParse(t, readTestdata(t, "adt_a01.hl7"))
	for _, c := range []struct{ name, got, want string }{
		{"SendingApplication", m.SendingApplication(), "REGADT"},
		{"SendingFacility", m.SendingFacility(), "MCM^2.16.840.1.113883.19.3.1^ISO"},
		{"ReceivingApplication", m.ReceivingApplication(), "IFENG"},
		{"ReceivingFacility", m.ReceivingFacility(), "SUNNYVALE"},
		{"ProcessingID", m.ProcessingID(), "P"},
		{"AcceptAckType", m.AcceptAckType(), "AL"},
		{"ApplicationAckType", m.ApplicationAckType(), "NE"},
		{"CharacterSet", m.CharacterSet(), "UNICODE UTF-8"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestDoubledBackslashIsRepairedAndKept(t *testing.T) {
	data := readTestdata(t, "doubled_backslash.hl7")
	m := mustParse(t, data)
	if !m.RepairedEncodingChars() {
		t.Error("RepairedEncodingChars() = false, want true")
	}
	if got := m.Delimiters(); got != DefaultDelimiters {
		t.Errorf("delimiters = %+v, want the defaults", got)
	}
	if got := get(t, m, "MSH-2"); got != `^~\\&` {
		t.Errorf("MSH-2 = %q, want the bytes as sent", got)
	}
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("round trip changed the bytes")
	}
}

func TestParseStripsBOMAndKeepsNUL(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||12\x0034||Nul^Name\r"
	m := mustParse(t, append([]byte("\xEF\xBB\xBF"), msg...))
	if string(m.Bytes()) != msg {
		t.Errorf("Bytes() = %q, want the message without its BOM", m.Bytes())
	}
	if got := get(t, m, "PID-3"); got != "12\x0034" {
		t.Errorf("PID-3 = %q: a NUL byte is data", got)
	}
	if got := get(t, m, "PID-5.1"); got != "Nul" {
		t.Errorf("PID-5.1 = %q after a NUL byte, want Nul", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		kind error
		code ErrorCode
		loc  string
	}{
		{"empty", "", ErrEmpty, CodeSegmentSequence, "byte 0"},
		{"only newlines", "\r\n\r\n", ErrEmpty, CodeSegmentSequence, "byte 0"},
		{"PID first", "PID|1||2\r", ErrNoMSH, CodeSegmentSequence, "MSH (byte 0)"},
		{"lowercase msh", "msh|^~\\&|\r", ErrNoMSH, CodeSegmentSequence, "MSH (byte 0)"},
		{"MSH alone", "MSH", ErrBadEncodingChars, CodeDataType, "MSH-1 (byte 0)"},
		{"control field separator", "MSH\x01^~\\&\x01A", ErrBadEncodingChars, CodeDataType, "MSH-1 (byte 3)"},
		{"letter field separator", "MSHX^~\\&XA", ErrBadEncodingChars, CodeDataType, "MSH-1 (byte 3)"},
		{"no encoding chars", "MSH|||||||", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"three encoding chars", "MSH|^~\\|A|B\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"six encoding chars", "MSH|^~\\&#$|A\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"duplicate encoding chars", "MSH|^&&^|A\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"encoding char equals field sep", "MSH|^~|&|A\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"all the same", "MSH|&&&&|A\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"space delimiter", "MSH|^~ &|A\r", ErrBadEncodingChars, CodeDataType, "MSH-2 (byte 4)"},
		{"bad segment name", "MSH|^~\\&|A\rP1|x\r", ErrBadSegment, CodeSegmentSequence, "byte 11"},
		{"long segment name", "MSH|^~\\&|A\rPIDX|x\r", ErrBadSegment, CodeSegmentSequence, "byte 11"},
		{"comment line", "MSH|^~\\&|A\r/* note */\r", ErrBadSegment, CodeSegmentSequence, "byte 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded with %d segments, want an error", m.SegmentCount())
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want kind %v", err, tt.kind)
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("err %T is not *hl7.Error", err)
			}
			if he.Code != tt.code {
				t.Errorf("code = %d, want %d", he.Code, tt.code)
			}
			if got := he.Location.String(); got != tt.loc {
				t.Errorf("location = %q, want %q", got, tt.loc)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	base := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\r"
	lim := Limits{MaxMessageBytes: 200, MaxSegments: 3, MaxFieldsPerSegment: 13, MaxRepetitions: 5}
	tests := []struct {
		name string
		data string
	}{
		{"bytes", base + "NTE|" + string(bytes.Repeat([]byte("x"), 200)) + "\r"},
		{"segments", base + "NTE|1\rNTE|2\rNTE|3\r"},
		{"fields", base + "NTE" + string(bytes.Repeat([]byte("|"), 14)) + "\r"},
		{"repetitions", base + "PID|1||a~b~c~d~e~f\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := m.ParseWith([]byte(tt.data), lim)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if m.SegmentCount() != 0 {
				t.Error("a failed parse left segments indexed")
			}
		})
	}
	// Just under every limit parses.
	var m Message
	if err := m.ParseWith([]byte(base+"PID|1||a~b~c~d~e\r"), lim); err != nil {
		t.Fatalf("under the limits: %v", err)
	}
	// MSH-2's repetition character does not count as a repetition.
	if err := m.ParseWith([]byte("MSH|^~\\&|A\r"), Limits{MaxRepetitions: 1}); err != nil {
		t.Fatalf("MSH-2 counted as repetitions: %v", err)
	}
}

func TestParseIntoReusesMemory(t *testing.T) {
	data := readTestdata(t, "oru_r01.hl7")
	var m Message
	if err := m.ParseInto(data); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := m.ParseInto(data); err != nil {
			t.Fatal(err)
		}
		if raw, _ := m.Raw(PathMSH10); len(raw) == 0 {
			t.Fatal("no MSH-10")
		}
		_, _ = m.Raw(PathMSH9)
		_ = m.Value(MustParsePath("OBX[4]-5"))
	})
	if allocs != 0 {
		t.Errorf("ParseInto + Raw + Value allocated %.0f times per run, want 0", allocs)
	}
}

func TestParseRefusesTwoMessagesInOne(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|1||ADT^A01|X1|P|2.5\rPID|1\r"
	for _, extra := range []string{"MSH|^~\\&|A|B|C|D|1||ADT^A01|X2|P|2.5\r", "BHS|^~\\&\r", "BTS|1\r", "FHS|^~\\&\r", "FTS|1\r"} {
		_, err := Parse([]byte(msg + extra + "PID|2\r"))
		var he *Error
		if !errors.As(err, &he) || !errors.Is(err, ErrBadSegment) || he.Location.Segment != extra[:3] || he.Location.Offset != len(msg) {
			t.Errorf("%s inside a message: err = %v", extra[:3], err)
		}
	}
}
