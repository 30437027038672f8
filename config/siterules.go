package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
)

// SiteRule is one of a site's own rules for the messages a listener or
// source takes, checked with its validation: a field required, a value
// from one of scripts.tables, for the messages when matches (the
// condition language of routes), so that a rule may tie fields together
// (PV1-3 required when PV1-2 is I).
type SiteRule struct {
	Field    string          `mapstructure:"field"`    // a path: PID-3.4, PV1-3
	Required bool            `mapstructure:"required"` // not empty (in one of its repetitions at least)
	Table    string          `mapstructure:"table"`    // every value is a key of this scripts.tables table
	When     *condition.When `mapstructure:"when"`
}

// SiteRules are a listener's rules, compiled.
type SiteRules []siteRule

type siteRule struct {
	path     hl7.Path
	field    string
	required bool
	table    map[string]string
	tname    string
	when     *condition.Condition
}

// compileSiteRules compiles the rules at key (listeners[0].rules),
// reporting each problem; tables are scripts.tables' (read).
func (c *Config) compileSiteRules(v *validator, key string, rules []SiteRule) SiteRules {
	var out SiteRules
	for i, r := range rules {
		k := fmt.Sprintf("%s.rules[%d]", key, i)
		p, err := hl7.ParsePath(r.Field)
		if err != nil {
			v.add(k+".field", "%s", strings.TrimPrefix(err.Error(), "hl7: "))
			continue
		}
		sr := siteRule{path: p, field: r.Field, required: r.Required, tname: r.Table}
		if !r.Required && r.Table == "" {
			v.add(k, "a rule says required: true, or a table its values come from")
		}
		if r.Table != "" {
			t, ok := c.Scripts.Tables[r.Table]
			if !ok {
				v.add(k+".table", "no table %q in scripts.tables (it has: %s)", r.Table, strings.Join(slices.Sorted(maps.Keys(c.Scripts.Tables)), ", "))
			}
			sr.table = map[string]string{}
			for from, to := range t.Table {
				sr.table[from] = to
			}
			if t.CSV != "" {
				_ = c.readTable(t.CSV, sr.table) // a file that does not read is reported at scripts.tables
			}
		}
		if r.When != nil {
			cond, problems := condition.Compile(*r.When)
			for _, pr := range problems {
				v.add(k+".when"+pr.Key, "%s", pr.Message)
			}
			sr.when = &cond
		}
		out = append(out, sr)
	}
	return out
}

func (c *Config) setSiteRules(name string, rs SiteRules) {
	if c.siteRules == nil {
		c.siteRules = map[string]SiteRules{}
	}
	c.siteRules[name] = rs
}

// SiteRules are listener or source name's rules, compiled by Validate
// (nil: none).
func (c *Config) SiteRules(name string) SiteRules { return c.siteRules[name] }

// Check reports the rules m breaks, each at its field with HL7 table
// 0357's code, never a value.
func (rs SiteRules) Check(listener string, m *hl7.Message) []spec.Problem {
	var out []spec.Problem
	for _, r := range rs {
		if r.when != nil && !r.when.Match(condition.Input{Listener: listener, Message: m}) {
			continue
		}
		found := false
		for at, v := range m.Values(r.path) {
			if len(v) == 0 {
				continue
			}
			found = true
			if r.table != nil {
				if _, ok := r.table[string(v)]; !ok {
					out = append(out, spec.Problem{Location: spec.Place(at.Segment, at.Occurrence, at.Field, at.Repetition, at.Component), Code: spec.CodeTableValue, Segment: at.Segment, SegmentRep: max(at.Occurrence, 1),
						Field: at.Field, FieldRep: at.Repetition, Component: at.Component,
						Reason: "site rule: " + r.field + " is not a value of table " + r.tname})
				}
			}
		}
		if r.required && !found {
			out = append(out, spec.Problem{Location: r.field, Code: spec.CodeRequiredMissing, Segment: r.path.Segment, SegmentRep: 1,
				Field: r.path.Field, Component: r.path.Component, Reason: "site rule: " + r.field + " is required"})
		}
	}
	return out
}
