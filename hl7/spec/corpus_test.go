package spec

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
)

// corpusDir holds third-party HL7 files beside the repository; tests read
// them in place and never copy them (they carry their own licenses).
const corpusDir = "../../../shared/corpus"

// corpusMessages are the corpus's messages that parse, by file.
func corpusMessages(t *testing.T) map[string][]*hl7.Message {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skip("no corpus at " + corpusDir)
	}
	out := map[string][]*hl7.Message{}
	_ = filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(corpusDir, p)
		b, err := hl7.SplitBatch(data, hl7.Limits{})
		if err != nil {
			return nil
		}
		for _, raw := range b.Messages {
			if m, err := hl7.Parse(raw); err == nil && m.CheckHeader() == nil {
				out[rel] = append(out[rel], m)
			}
		}
		return nil
	})
	return out
}

func TestCorpusSurvey(t *testing.T) {
	if os.Getenv("SURVEY") == "" {
		t.Skip()
	}
	for file, msgs := range corpusMessages(t) {
		for i, m := range msgs {
			for _, p := range Validate(m) {
				t.Logf("%s #%d (%s %s): %s %d %s", file, i+1, m.Version(), m.Structure(), p.Location, p.Code, p.Reason)
			}
		}
	}
}

// TestCorpusProblemsAreExplained: every problem Validate finds in the
// corpus is in testdata/corpus_problems.txt with why it is right, and
// every one there is still found. A new problem on a well-formed message
// is a false one until someone reads the message and explains it.
func TestCorpusProblemsAreExplained(t *testing.T) {
	data, err := os.ReadFile("testdata/corpus_problems.txt")
	if err != nil {
		t.Fatal(err)
	}
	explained := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 || strings.TrimSpace(f[4]) == "" {
			t.Fatalf("want file, #n, place, code, why: %q", line)
		}
		explained[strings.Join(f[:4], "\t")] = true
	}
	found := map[string]bool{}
	for file, msgs := range corpusMessages(t) {
		for i, m := range msgs {
			for _, p := range Validate(m) {
				k := strings.Join([]string{file, "#" + strconv.Itoa(i+1), p.Location, strconv.Itoa(p.Code)}, "\t")
				found[k] = true
				if !explained[k] {
					t.Errorf("not explained (a false problem?): %s: %s", k, p.Reason)
				}
			}
		}
	}
	for k := range explained {
		if !found[k] {
			t.Errorf("explained but no longer found: %s", k)
		}
	}
	if len(found) == 0 {
		t.Fatal("no problem found in the corpus at all: is the corpus there?")
	}
}
