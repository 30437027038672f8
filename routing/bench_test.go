package routing

import (
	"os"
	"testing"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/transforms"
)

// BenchmarkEvaluate: what the router does per message besides storing.
// On the 1.5 KB ORU of hl7/testdata it evaluates 10 routes in order (the
// conditions of nine do not hold: types, events, listeners, field tests;
// the tenth matches) and applies the matching route's 5 transforms.
// "parsed" starts from the parsed message, as Evaluate does: routing and
// transforms alone, issue 5's target (under 5 µs, a handful of
// allocations). "with-parse" adds parsing the stored bytes, which the
// router does once per message whatever its routes.
//
//	go test ./routing -run '^$' -bench Evaluate -benchmem -count 6
func BenchmarkEvaluate(b *testing.B) {
	data, err := os.ReadFile("../hl7/testdata/oru_r01.hl7")
	if err != nil {
		b.Fatal(err)
	}
	routes := benchRoutes(b)
	for _, bc := range []struct {
		name   string
		routes []Route
		parse  bool
	}{
		{"10-routes-5-transforms/parsed", routes, false},
		{"10-routes-no-transform/parsed", withoutTransforms(routes), false},
		{"10-routes-5-transforms/with-parse", routes, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var m hl7.Message
			if err := m.ParseWith(data, routerLimits); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if bc.parse {
					if err := m.ParseWith(data, routerLimits); err != nil {
						b.Fatal(err)
					}
				}
				p := Evaluate(bc.routes, "", condition.Input{Listener: "lab", Message: &m}, data, false)
				if len(p.Copies) != 1 || len(p.DeadLetters) != 0 {
					b.Fatalf("copies %d, dead letters %d", len(p.Copies), len(p.DeadLetters))
				}
			}
		})
	}
}

func benchRoutes(b *testing.B) []Route {
	s := func(v string) *string { return &v }
	whens := []condition.When{
		{Type: []string{"ADT"}, Event: []string{"A01", "A04", "A08"}},
		{Type: []string{"ORM"}},
		{Listener: []string{"adt"}},
		{Type: []string{"ORU"}, Event: []string{"R03"}},
		{Type: []string{"ORU"}, Field: "MSH-4", Equals: s("OTHERLAB")},
		{Type: []string{"ORU"}, All: []condition.When{{Field: "OBX-11", Equals: s("X"), Over: "all"}}},
		{Type: []string{"ORU"}, Field: "PID-3.4", In: []string{"TEST", "TRAIN"}},
		{Not: &condition.When{Type: []string{"ORU"}}},
		{Type: []string{"ORU"}, Field: "OBX-5", Matches: s(`^POSITIVE`)},
		{Type: []string{"ORU"}, Event: []string{"R01"}},
	}
	var routes []Route
	for i, w := range whens {
		c, problems := condition.Compile(w)
		if len(problems) > 0 {
			b.Fatal(problems)
		}
		routes = append(routes, Route{Name: "r" + string(rune('0'+i)), When: c, To: []string{"emr"}})
	}
	p, problems := transforms.Compile([]transforms.Spec{
		{Op: "set", Options: &transforms.SetOptions{Set: "MSH-5", Value: s("EMR")}},
		{Op: "set", Options: &transforms.SetOptions{Set: "MSH-6", Value: s("MAIN")}},
		{Op: "map", Options: &transforms.MapOptions{Map: "MSH-4", Table: map[string]string{"LABFAC": "LAB1", "GHH LAB": "LAB2"}}},
		{Op: "replace", Options: &transforms.ReplaceOptions{Replace: "PID-5.1", Pattern: `[^A-Za-z]`, With: s("")}},
		{Op: "remove_segments", Options: &transforms.RemoveOptions{RemoveSegments: []string{"Z*", "NTE"}}},
	}, transforms.Options{})
	if len(problems) > 0 {
		b.Fatal(problems)
	}
	routes[9].Transform = p
	return routes
}

func withoutTransforms(routes []Route) []Route {
	out := append([]Route(nil), routes...)
	out[9].Transform = nil
	return out
}
