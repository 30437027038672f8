package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/hl7broker/hl7broker/hl7"
)

// corpusDir holds third-party HL7 files beside the repository; tests read
// them in place and never copy them (they carry their own licenses).
const corpusDir = "../../shared/corpus"

var (
	unmarshallerOnce sync.Once
	unmarshaller     *jsonformat.Unmarshaller
	unmarshallerErr  error
)

// validate checks a Bundle with Google's FHIR R4 JSON unmarshaller, which
// checks every element's name, type, cardinality and code against the R4
// specification, then checks what it lets through: JSON FHIR forbids
// (empty strings, objects and arrays, nulls), and references that point to
// no entry of the Bundle.
func validate(t *testing.T, name string, bundle []byte) {
	t.Helper()
	unmarshallerOnce.Do(func() {
		unmarshaller, unmarshallerErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	})
	if unmarshallerErr != nil {
		t.Fatal(unmarshallerErr)
	}
	if _, err := unmarshaller.Unmarshal(bundle); err != nil {
		t.Errorf("%s: not valid FHIR R4: %v", name, err)
	}
	if err := checkNoDuplicateKeys(json.NewDecoder(bytes.NewReader(bundle))); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	var doc any
	if err := json.Unmarshal(bundle, &doc); err != nil {
		t.Fatalf("%s: not JSON: %v", name, err)
	}
	if err := checkNoEmpty(doc, "Bundle"); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	fullURLs := map[string]bool{}
	for _, e := range doc.(map[string]any)["entry"].([]any) {
		u := e.(map[string]any)["fullUrl"].(string)
		if fullURLs[u] {
			t.Errorf("%s: fullUrl %s twice", name, u)
		}
		fullURLs[u] = true
	}
	for _, ref := range regexp.MustCompile(`"reference":"([^"]+)"`).FindAllSubmatch(bundle, -1) {
		if !fullURLs[string(ref[1])] {
			t.Errorf("%s: reference %s is to no entry of the Bundle", name, ref[1])
		}
	}
}

func checkNoEmpty(v any, path string) error {
	switch v := v.(type) {
	case nil:
		return fmt.Errorf("%s is null", path)
	case string:
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is an empty string", path)
		}
	case map[string]any:
		if len(v) == 0 {
			return fmt.Errorf("%s is an empty object", path)
		}
		for k, e := range v {
			if err := checkNoEmpty(e, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if len(v) == 0 {
			return fmt.Errorf("%s is an empty array", path)
		}
		for i, e := range v {
			if err := checkNoEmpty(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNoDuplicateKeys walks the JSON tokens: an object must not repeat a
// key (encoding/json would keep the last one silently).
func checkNoDuplicateKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, _ := dec.Token()
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice in one object", key)
			}
			seen[key] = true
			if err := checkNoDuplicateKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if err := checkNoDuplicateKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

var corpusRow = regexp.MustCompile("^\\| `([^`]+)` \\| `[^`]*` \\| ([^|]+) \\|")

// corpusFiles lists the corpus files their source projects expect to parse.
func corpusFiles(t *testing.T) []string {
	src, err := os.ReadFile(filepath.Join(corpusDir, "SOURCES.md"))
	if err != nil {
		t.Skipf("corpus not available (%v): skipping", err)
	}
	var out []string
	for _, line := range strings.Split(string(src), "\n") {
		if m := corpusRow.FindStringSubmatch(line); m != nil && strings.HasPrefix(strings.TrimSpace(m[2]), "parse-ok") {
			out = append(out, m[1])
		}
	}
	return out
}

// messagesOf splits a file into its messages.
func messagesOf(t *testing.T, data []byte) []*hl7.Message {
	t.Helper()
	b, err := hl7.SplitBatch(data, hl7.Limits{})
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	var out []*hl7.Message
	for _, raw := range b.Messages {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		out = append(out, m)
	}
	return out
}

var newYork, _ = time.LoadLocation("America/New_York")

// TestBundlesAreValidR4 converts every message of every parse-ok corpus
// file and of the project's testdata, in both Bundle kinds, and validates
// each Bundle; messages of types with no mapping must say so.
func TestBundlesAreValidR4(t *testing.T) {
	files := corpusFiles(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(corpusDir, f))
	}
	local, _ := filepath.Glob("../hl7/testdata/*.hl7")
	own, _ := filepath.Glob("testdata/*.hl7")
	paths = append(append(paths, local...), own...)
	converted, refused := 0, 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range messagesOf(t, data) {
			name := fmt.Sprintf("%s#%d", p, i+1)
			for _, kind := range []string{"transaction", "collection"} {
				out, err := Convert(m, Options{Bundle: kind, TimeZone: newYork})
				if err != nil {
					var ue *UnsupportedError
					if !errorsAs(err, &ue) {
						t.Errorf("%s: %v", name, err)
					}
					refused++
					continue
				}
				converted++
				validate(t, name+" "+kind, out)
			}
		}
	}
	t.Logf("%d Bundles valid, %d messages of types with no mapping", converted, refused/2)
	if converted < 40 {
		t.Errorf("only %d Bundles converted", converted)
	}
}

func errorsAs(err error, target **UnsupportedError) bool {
	ue, ok := err.(*UnsupportedError)
	if ok {
		*target = ue
	}
	return ok
}

// pretty is a Bundle indented, for failure messages.
func pretty(b []byte) string {
	var out bytes.Buffer
	_ = json.Indent(&out, b, "", "  ")
	return out.String()
}
