package hl7

import (
	"errors"
	"strings"
	"testing"
)

func TestSplitBatchFile(t *testing.T) {
	data := readTestdata(t, "batch_file.hl7")
	b, err := SplitBatch(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 3 || len(b.Envelope) != 4 || len(b.Warnings) != 0 {
		t.Fatalf("messages %d, envelope %d, warnings %v", len(b.Messages), len(b.Envelope), b.Warnings)
	}
	for i, want := range []string{"B-1", "B-2", "B-3"} {
		m := mustParse(t, b.Messages[i])
		if m.ControlID() != want || m.SegmentCount() != 2 {
			t.Errorf("message %d: control ID %q, %d segments", i, m.ControlID(), m.SegmentCount())
		}
	}
	if !strings.HasPrefix(string(b.Envelope[0]), "FHS|") || string(b.Envelope[2]) != "BTS|3" {
		t.Errorf("envelope = %q", b.Envelope)
	}
}

func TestSplitBackToBack(t *testing.T) {
	// Three messages, one per terminator style, with blank lines between
	// them and a BOM in front, as exports write them.
	terms := []string{"\r", "\n", "\r\n"}
	var sb strings.Builder
	sb.WriteString("\xEF\xBB\xBF")
	for i, term := range terms {
		sb.WriteString("MSH|^~\\&|A|B|C|D|1||ADT^A01|M" + string(rune('1'+i)) + "|P|2.5" + term + "PID|1" + term + term + term)
	}
	b, err := SplitBatch([]byte(sb.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 3 {
		t.Fatalf("%d messages, want 3", len(b.Messages))
	}
	for i, raw := range b.Messages {
		if !strings.HasSuffix(string(raw), "|P|2.5"+terms[i]+"PID|1"+terms[i]) {
			t.Errorf("message %d = %q: want one terminator kept, blank lines dropped", i, raw)
		}
		if m := mustParse(t, raw); m.SegmentCount() != 2 || m.ControlID() != "M"+string(rune('1'+i)) {
			t.Errorf("message %d: %d segments, control ID %q", i, m.SegmentCount(), m.ControlID())
		}
	}
}

func TestSplitBatchCountsAndErrors(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1\r"
	tests := []struct {
		name     string
		data     string
		messages int
		warnings []string
		err      error
	}{
		{"counts agree", "FHS|^~\\&\rBHS|^~\\&\r" + msg + msg + "BTS|2\rFTS|1\r", 2, nil, nil},
		{"BTS disagrees", "BHS|^~\\&\r" + msg + "BTS|2\r", 1, []string{"BTS-1 says 2 messages; the batch has 1"}, nil},
		{"FTS disagrees", "FHS|^~\\&\rBHS|^~\\&\r" + msg + "BTS|1\rBHS|^~\\&\r" + msg + "BTS|1\rFTS|3\r", 2, []string{"FTS-1 says 3 batches; the file has 2"}, nil},
		{"empty trailer counts", "FHS|^~\\&\rBHS|^~\\&\r" + msg + "BTS|\rFTS|\r", 1, nil, nil},
		{"BTS without BHS", msg + "BTS|1\r", 1, nil, nil},
		{"FTS without BHS", "FHS|^~\\&\r" + msg + "FTS|1\r", 1, nil, nil},
		{"custom separator", "BHS$^~\\&\r" + strings.ReplaceAll(msg, "|", "$") + "BTS$1\r", 1, nil, nil},
		{"segment before MSH", "BHS|^~\\&\rEVN|A04\r" + msg, 0, nil, ErrBatch},
		{"two BHS", "BHS|^~\\&\r" + msg + "BHS|^~\\&\r" + msg, 0, nil, ErrBatch},
		{"two FHS", "FHS|^~\\&\r" + msg + "FHS|^~\\&\r", 0, nil, ErrBatch},
		{"nothing", "\r\n\r\n", 0, nil, ErrEmpty},
		{"comment first", "/* a comment */\n" + msg, 0, nil, ErrBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := SplitBatch([]byte(tt.data), Limits{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				var he *Error
				if !errors.As(err, &he) || he.Code != CodeSegmentSequence {
					t.Errorf("err %v has no code 100", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != tt.messages {
				t.Errorf("%d messages, want %d", len(b.Messages), tt.messages)
			}
			var got []string
			for _, w := range b.Warnings {
				got = append(got, w.Reason)
				if w.Severity != SeverityWarning {
					t.Errorf("warning severity %c", w.Severity)
				}
			}
			if strings.Join(got, ";") != strings.Join(tt.warnings, ";") {
				t.Errorf("warnings = %q, want %q", got, tt.warnings)
			}
		})
	}
	if _, err := SplitBatch([]byte(msg+msg), Limits{MaxMessageBytes: 50}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the byte limit: err = %v", err)
	}
}
