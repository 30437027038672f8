package transforms

import (
	"os"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
)

// BenchmarkStep: each kind of step alone on a parsed copy of the 1.5 KB
// ORU of hl7/testdata, clone included (as ApplyParsed does), to see where
// a route's transform time goes.
//
//	go test ./transforms -run '^$' -bench Step -benchmem
func BenchmarkStep(b *testing.B) {
	data, err := os.ReadFile("../hl7/testdata/oru_r01.hl7")
	if err != nil {
		b.Fatal(err)
	}
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	s := func(v string) *string { return &v }
	for _, bc := range []struct {
		name string
		spec Spec
	}{
		{"none", Spec{Op: "clear", Options: &ClearOptions{Clear: "ZZZ-1"}}},
		{"set-MSH-5", Spec{Op: "set", Options: &SetOptions{Set: "MSH-5", Value: s("EMR")}}},
		{"set-PID-5.1", Spec{Op: "set", Options: &SetOptions{Set: "PID-5.1", Value: s("Someone")}}},
		{"map-MSH-4", Spec{Op: "map", Options: &MapOptions{Map: "MSH-4", Table: map[string]string{"LABFAC": "LAB1", "GHH LAB": "LAB2"}}}},
		{"replace-PID-5.1", Spec{Op: "replace", Options: &ReplaceOptions{Replace: "PID-5.1", Pattern: `[^A-Za-z]`, With: s("")}}},
		{"remove-Z-NTE", Spec{Op: "remove_segments", Options: &RemoveOptions{RemoveSegments: []string{"Z*", "NTE"}}}},
		{"template-PID-2", Spec{Op: "set", Options: &SetOptions{Set: "PID-2", Template: s("{{PID-3.1}}^{{PID-3.4}}")}}},
	} {
		p, problems := Compile([]Spec{bc.spec}, Options{})
		if len(problems) > 0 {
			b.Fatal(problems)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ApplyParsed(m, data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
