package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
)

// FuzzConvert: any message that parses converts without panicking, to
// JSON that parses, or is refused with an UnsupportedError.
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hl7")
	more, _ := filepath.Glob("../hl7/testdata/*.hl7")
	for _, p := range append(files, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			return
		}
		for _, kind := range []string{"transaction", "collection"} {
			out, err := Convert(m, Options{Bundle: kind})
			if err != nil {
				if _, ok := err.(*UnsupportedError); !ok {
					t.Fatalf("untyped error %v", err)
				}
				return
			}
			if !json.Valid(out) {
				t.Fatalf("not JSON: %s", out)
			}
		}
	})
}
