package hl7

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// corpusDir holds third-party HL7 files beside the repository. They carry
// their own licenses: tests read them in place and never copy them.
const corpusDir = "../../shared/corpus"

type corpusEntry struct {
	file, expect string
	msgs         int // from SOURCES.md features, -1 when not stated
}

var corpusRow = regexp.MustCompile("^\\| `([^`]+)` \\| `[^`]*` \\| ([^|]+) \\| ([^|]*) \\|")

func readCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(corpusDir, "SOURCES.md"))
	if err != nil {
		t.Skipf("corpus not available (%v): skipping", err)
	}
	var out []corpusEntry
	for _, line := range strings.Split(string(src), "\n") {
		m := corpusRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		e := corpusEntry{file: m[1], expect: strings.TrimSpace(m[2]), msgs: -1}
		if mm := regexp.MustCompile(`msgs=(\d+)`).FindStringSubmatch(m[3]); mm != nil {
			e.msgs, _ = strconv.Atoi(mm[1])
		}
		out = append(out, e)
	}
	if len(out) < 90 {
		t.Fatalf("read only %d rows from SOURCES.md", len(out))
	}
	return out
}

// TestCorpus checks every corpus file against what its source project
// expects: files expected to parse split, parse, round-trip byte for byte
// and give the same MSH-9 and MSH-10 as a naive split of the MSH line;
// negative files give a typed error (or, for required-field cases, fail
// CheckHeader) and a reject ACK that parses back.
func TestCorpus(t *testing.T) {
	entries := readCorpus(t)
	passed := map[string]int{}
	total := map[string]int{}
	for _, e := range entries {
		total[e.expect]++
		t.Run(e.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, e.file))
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			switch e.expect {
			case "parse-ok", "parse-ok(tolerant)", "structure-validation-fail", "profile-validation-fail":
				ok = checkParses(t, data, e.msgs)
			case "decode-fail-as-utf8":
				ok = checkParses(t, data, e.msgs) && checkUTF8Warning(t, data)
			case "reject (AR/AE expected)", "strict-fail":
				ok = checkParses(t, data, e.msgs) && checkHeaderRejected(t, data)
			default: // parse-fail, malformed (...), needs-preprocessing
				ok = checkRejected(t, data)
			}
			if ok {
				passed[e.expect]++
			}
		})
	}
	sum := 0
	for _, k := range slices.Sorted(maps.Keys(total)) {
		t.Logf("%-30s %3d of %3d files as their source expects", k, passed[k], total[k])
		sum += passed[k]
	}
	t.Logf("corpus: %d of %d files passed by expectation", sum, len(entries))
}

func checkParses(t *testing.T, data []byte, wantMsgs int) bool {
	t.Helper()
	b, err := SplitBatch(data, Limits{})
	if err != nil {
		t.Errorf("SplitBatch: %v", err)
		assertNoContent(t, err.Error(), data)
		return false
	}
	if wantMsgs >= 0 && len(b.Messages) != wantMsgs {
		t.Errorf("split into %d messages; SOURCES.md counts %d MSH segments", len(b.Messages), wantMsgs)
		return false
	}
	for i, raw := range b.Messages {
		m, err := Parse(raw)
		if err != nil {
			t.Errorf("message %d: %v", i+1, err)
			return false
		}
		if !bytes.Equal(m.Bytes(), bytes.TrimPrefix(raw, utf8BOM)) {
			t.Errorf("message %d does not round-trip byte for byte", i+1)
			return false
		}
		f9, f10 := naiveMSH(raw)
		if got, _ := m.Raw(PathMSH9); string(got) != f9 {
			t.Errorf("message %d: MSH-9 = %q, naive split says %q", i+1, got, f9)
			return false
		}
		if got, _ := m.Raw(PathMSH10); string(got) != f10 {
			t.Errorf("message %d: MSH-10 = %q, naive split says %q", i+1, got, f10)
			return false
		}
		if ack, err := ParseAck(BuildAck(m, AckOptions{})); err != nil || ack.ControlID != m.ControlID() {
			t.Errorf("message %d: ACK does not parse back: %v", i+1, err)
			return false
		}
	}
	return true
}

// naiveMSH splits the MSH line on its field separator: MSH-n is part n-1.
func naiveMSH(raw []byte) (msh9, msh10 string) {
	raw = bytes.TrimPrefix(raw, utf8BOM)
	line := raw
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	parts := strings.Split(string(line), string(line[3]))
	part := func(n int) string {
		if n-1 < len(parts) {
			return parts[n-1]
		}
		return ""
	}
	return part(9), part(10)
}

func checkUTF8Warning(t *testing.T, data []byte) bool {
	t.Helper()
	c, _ := LookupCharset("UNICODE UTF-8")
	if ws := c.Check(data); len(ws) == 0 {
		t.Error("no warning for bytes that are not UTF-8")
		return false
	}
	return true
}

func checkHeaderRejected(t *testing.T, data []byte) bool {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Errorf("Parse: %v", err)
		return false
	}
	err = m.CheckHeader()
	var he *Error
	if !errors.As(err, &he) || he.Code != CodeRequiredFieldMissing {
		t.Errorf("CheckHeader = %v, want a required-field error", err)
		return false
	}
	ack, perr := ParseAck(BuildAck(m, AckOptions{Outcome: Rejected, Err: he, Text: he.Reason}))
	if perr != nil || ack.Positive() || len(ack.Errors) == 0 || ack.Errors[0].Code != CodeRequiredFieldMissing {
		t.Errorf("reject ACK: %+v, %v", ack, perr)
		return false
	}
	return true
}

func checkRejected(t *testing.T, data []byte) bool {
	t.Helper()
	var err error
	b, err := SplitBatch(data, Limits{})
	if err == nil {
		for _, raw := range b.Messages {
			if _, err = Parse(raw); err != nil {
				break
			}
		}
	}
	var he *Error
	if !errors.As(err, &he) {
		t.Errorf("want a typed *hl7.Error, got %v", err)
		return false
	}
	if he.Code == 0 {
		t.Errorf("error %q has no HL7 code", he.Error())
	}
	assertNoContent(t, he.Error(), data)
	ack, perr := ParseAck(BuildRejectAck(data, AckOptions{Err: he, Text: he.Reason}))
	if perr != nil || ack.Positive() {
		t.Errorf("reject ACK: %+v, %v", ack, perr)
		return false
	}
	return true
}

// assertNoContent fails when text (an error or warning) holds any token of
// the message: a run of at least five bytes between delimiters that has a
// letter in it. Errors may name places and numbers, never values.
func assertNoContent(t *testing.T, text string, data []byte) {
	t.Helper()
	for _, tok := range bytes.FieldsFunc(data, func(r rune) bool { return strings.ContainsRune("|^~&\\\r\n$%#", r) }) {
		if len(tok) < 5 || !bytes.ContainsFunc(tok, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) {
			continue
		}
		if strings.Contains(text, string(tok)) {
			t.Errorf("%q carries message content %q", text, tok)
		}
	}
}
