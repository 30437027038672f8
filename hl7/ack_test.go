package hl7

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var ackTime = time.Date(2026, 1, 14, 8, 15, 30, 0, time.FixedZone("", -5*3600))

func TestBuildAckOriginalAndEnhanced(t *testing.T) {
	tests := []struct {
		file    string
		opts    AckOptions
		want    []string
		code    AckCode
		errCode ErrorCode
	}{
		{"adt_a04_lf.hl7", AckOptions{Outcome: Accepted, ControlID: "ACK1", Time: ackTime}, []string{
			"MSH|^~\\&|EMR|HOSP|FRONTDESK|CLINIC1|20260114081530.000-0500||ACK^A04|ACK1|P|2.3",
			"MSA|AA|A04-778812",
		}, AA, 0},
		{"adt_a01.hl7", AckOptions{Outcome: Accepted, ControlID: "ACK2", Time: ackTime, Text: "stored"}, []string{
			"MSH|^~\\&|IFENG|SUNNYVALE|REGADT|MCM^2.16.840.1.113883.19.3.1^ISO|20260114081530.000-0500||ACK^A01^ACK|ACK2|P|2.5.1",
			"MSA|CA|MSG00001|stored",
		}, CA, 0},
		{"adt_a01.hl7", AckOptions{Outcome: Rejected, Mode: AckModeOriginal, ControlID: "ACK3", Time: ackTime, Text: "type not accepted",
			Err: &Error{Code: CodeUnsupportedType, Severity: SeverityError, Location: Location{Segment: "MSH", Field: 9, Component: 1}}}, []string{
			"MSH|^~\\&|IFENG|SUNNYVALE|REGADT|MCM^2.16.840.1.113883.19.3.1^ISO|20260114081530.000-0500||ACK^A01^ACK|ACK3|P|2.5.1",
			"MSA|AR|MSG00001|type not accepted",
			"ERR||MSH^1^9^^1|200^Unsupported message type^HL70357|E||||type not accepted",
		}, AR, CodeUnsupportedType},
		{"adt_a08_crlf.hl7", AckOptions{Outcome: Errored, Mode: AckModeEnhanced, ControlID: "ACK4", Time: ackTime,
			Err: &Error{Code: CodeRequiredFieldMissing, Location: Location{Segment: "PID", Field: 3}}}, []string{
			"MSH|^~\\&|IFENG|SUNNYVALE|REGADT|MCM|20260114081530.000-0500||ACK^A08^ACK|ACK4|P|2.4",
			"MSA|CE|MSG00008",
			"ERR|PID^1^3^101&Required field missing&HL70357",
		}, CE, CodeRequiredFieldMissing},
		{"adt_a08_custom_delims.hl7", AckOptions{Outcome: Errored, ControlID: "ACK5", Time: ackTime, Text: "try a$gain"}, []string{
			"MSH$%~\\&$IFENG$SUNNYVALE$REGADT$MCM$20260114081530.000-0500$$ACK%A08%ACK$ACK5$P$2.4",
			"MSA$AE$MSG00009$try a\\F\\gain",
			"ERR$%%%207&Application internal error&HL70357",
		}, AE, CodeInternal},
		{"oru_r01_v27.hl7", AckOptions{Outcome: Accepted, Mode: AckModeOriginal, ControlID: "ACK6", Time: ackTime}, []string{
			"MSH|^~\\&#|EHR|HOSP|LAB|LABFAC|20260114081530.000-0500||ACK^R01^ACK|ACK6|P|2.7",
			"MSA|AA|LAB-27-0001",
		}, AA, 0},
		{"doubled_backslash.hl7", AckOptions{ControlID: "ACK7", Time: ackTime}, []string{
			"MSH|^~\\&|RECV|FAC2|SENDER|FAC|20260114081530.000-0500||ACK^A08|ACK7|P|2.3",
			"MSA|AA|DBL-001",
		}, AA, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+string(tt.code), func(t *testing.T) {
			m := mustParse(t, readTestdata(t, tt.file))
			ack := BuildAck(m, tt.opts)
			want := strings.Join(tt.want, "\r") + "\r"
			if string(ack) != want {
				t.Errorf("ACK =\n%q\nwant\n%q", ack, want)
			}
			a, err := ParseAck(ack)
			if err != nil {
				t.Fatalf("ParseAck of our own ACK: %v", err)
			}
			if a.Code != tt.code || a.ControlID != m.ControlID() {
				t.Errorf("read back code %s control ID %q", a.Code, a.ControlID)
			}
			if tt.errCode != 0 && (len(a.Errors) != 1 || a.Errors[0].Code != tt.errCode) {
				t.Errorf("read back errors %+v, want code %d", a.Errors, tt.errCode)
			}
			if a.Positive() != (tt.code == AA || tt.code == CA) {
				t.Errorf("Positive() = %v for %s", a.Positive(), a.Code)
			}
		})
	}
}

func TestAckDefaults(t *testing.T) {
	m := mustParse(t, readTestdata(t, "adt_a04_lf.hl7"))
	a1, a2 := BuildAck(m, AckOptions{}), BuildAck(m, AckOptions{})
	p1, p2 := mustParse(t, a1), mustParse(t, a2)
	if p1.ControlID() == "" || p1.ControlID() == p2.ControlID() {
		t.Errorf("generated control IDs %q and %q: want fresh and distinct", p1.ControlID(), p2.ControlID())
	}
	if len(p1.ControlID()) > 20 {
		t.Errorf("control ID %q is longer than 20", p1.ControlID())
	}
	if ts := get(t, p1, "MSH-7"); len(ts) < 14 {
		t.Errorf("MSH-7 = %q", ts)
	}
	over := BuildAck(m, AckOptions{SendingApplication: "HL7BROKER", SendingFacility: "HOSP^X"})
	if p := mustParse(t, over); get(t, p, "MSH-3") != "HL7BROKER" || get(t, p, "MSH-4") != "HOSP^X" || get(t, p, "MSH-5") != "FRONTDESK" {
		t.Errorf("overridden sender: %q", over)
	}
	if ModeFor(m) != AckModeOriginal || ModeFor(mustParse(t, readTestdata(t, "adt_a01.hl7"))) != AckModeEnhanced {
		t.Error("ModeFor does not follow MSH-15/16")
	}
}

func TestBuildRejectAck(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"bad segment after a good MSH", "MSH|^~\\&|APP|FAC|RAPP|RFAC|1||ADT^A01|C9|P|2.5\r/* junk */\r", []string{
			"MSH|^~\\&|RAPP|RFAC|APP|FAC|20260114081530.000-0500||ACK^A01^ACK|R1|P|2.5",
			"MSA|AR|C9|unparseable",
			"ERR||MSH^1|100^Segment sequence error^HL70357|E||||unparseable",
		}},
		{"bad encoding characters", "MSH|&&&&|APP|FAC|RAPP|RFAC|1||ADT^A01|C^10|P|2.3\rPID|1\r", []string{
			"MSH|^~\\&|RAPP|RFAC|APP|FAC|20260114081530.000-0500||ACK|R1|P|2.3",
			"MSA|AR|C\\S\\10|unparseable",
			"ERR|MSH^1^^100&Segment sequence error&HL70357",
		}},
		{"enhanced mode salvaged", "MSH|^~\\&|APP|FAC|||1||ORU^R01|C11|P|2.5.1|||AL|NE\rbad\r", []string{
			"MSH|^~\\&|||APP|FAC|20260114081530.000-0500||ACK^R01^ACK|R1|P|2.5.1",
			"MSA|CR|C11|unparseable",
			"ERR||MSH^1|100^Segment sequence error^HL70357|E||||unparseable",
		}},
		{"no MSH", "garbage\x00\x01", []string{
			"MSH|^~\\&|||||20260114081530.000-0500||ACK|R1|P|2.5",
			"MSA|AR||unparseable",
			"ERR||MSH^1|100^Segment sequence error^HL70357|E||||unparseable",
		}},
		{"control bytes in MSH-10", "MSH|&&&&|APP|FAC|||1||ADT|C\x0012|P|2.5\r", []string{
			"MSH|^~\\&|||APP|FAC|20260114081530.000-0500||ACK|R1|P|2.5",
			"MSA|AR||unparseable",
			"ERR||MSH^1|100^Segment sequence error^HL70357|E||||unparseable",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := AckOptions{ControlID: "R1", Time: ackTime, Text: "unparseable",
				Err: &Error{Code: CodeSegmentSequence, Location: Location{Segment: "MSH"}}}
			ack := BuildRejectAck([]byte(tt.data), opts)
			want := strings.Join(tt.want, "\r") + "\r"
			if string(ack) != want {
				t.Errorf("ACK =\n%q\nwant\n%q", ack, want)
			}
			a, err := ParseAck(ack)
			if err != nil {
				t.Fatalf("ParseAck: %v", err)
			}
			if a.Positive() {
				t.Error("a reject ACK reads as positive")
			}
		})
	}
}

func TestParseAck(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		code   AckCode
		ctl    string
		errors []AckError
	}{
		{"v2.5 ERR", "MSH|^~\\&|R|F|S|F|1||ACK^A01^ACK|9|P|2.5.1\rMSA|AE|MSG1|bad PID\rERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3 empty\r",
			AE, "MSG1", []AckError{{Code: 101, CodeText: "Required field missing", Severity: 'E', Location: "PID^1^3", Text: "PID-3 empty"}}},
		{"v2.3 ERR with repetitions", "MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.3\rMSA|AR|MSG2\rERR|PID^1^3^101&Missing&HL70357~PV1^1^2^103&Bad&HL70357\r",
			AR, "MSG2", []AckError{{Code: 101, CodeText: "Missing", Location: "PID^1^3"}, {Code: 103, CodeText: "Bad", Location: "PV1^1^2"}}},
		{"MSA-6", "MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.2\rMSA|CR|MSG3|text|||204^Unknown key\r",
			CR, "MSG3", []AckError{{Code: 204, CodeText: "Unknown key"}}},
		{"plain AA, LF", "MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.3\nMSA|AA|MSG4\n", AA, "MSG4", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAck([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if a.Code != tt.code || a.ControlID != tt.ctl {
				t.Errorf("code %s control %q", a.Code, a.ControlID)
			}
			if len(a.Errors) != len(tt.errors) {
				t.Fatalf("errors %+v, want %+v", a.Errors, tt.errors)
			}
			for i := range tt.errors {
				if a.Errors[i] != tt.errors[i] {
					t.Errorf("error %d = %+v, want %+v", i, a.Errors[i], tt.errors[i])
				}
			}
		})
	}
	for _, bad := range []string{"MSH|^~\\&|R|F|S|F|1||ADT^A01|9|P|2.3\rPID|1\r", "MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.3\rMSA|OK|1\r", "nonsense"} {
		_, err := ParseAck([]byte(bad))
		var he *Error
		if !errors.As(err, &he) {
			t.Errorf("ParseAck(%q) err = %v, want *Error", bad, err)
		}
	}
}
