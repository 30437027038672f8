package transforms

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// mapStep replaces the value at path through a lookup table.
type mapStep struct {
	path   hl7.Path
	table  map[string]string
	onMiss string // keep | default | reject
	def    string
}

func (s *mapStep) String() string { return "map " + s.path.String() }

func (s *mapStep) Apply(m *hl7.Message) error {
	v := m.Value(s.path)
	to, ok := s.table[string(v)]
	switch {
	case ok:
	case s.onMiss == "default":
		to = s.def
	case s.onMiss == "reject":
		return errors.New("the value is not in the lookup table") // which value: not said, it may be PHI
	default:
		return nil
	}
	if to == string(v) {
		return nil
	}
	return m.Set(s.path, to)
}

// MapOptions are the keys of map: a lookup table, inline or in a CSV file.
type MapOptions struct {
	Map     string            `mapstructure:"map"`
	Table   map[string]string `mapstructure:"table"`                              // inline lookup table
	CSV     string            `mapstructure:"csv"`                                // or a two-column CSV file: from,to
	OnMiss  string            `mapstructure:"on_miss" enum:"keep,default,reject"` // keep (default) | default | reject
	Default string            `mapstructure:"default"`
}

var mapType = StepType[MapOptions]{Name: "map", Compile: func(s *MapOptions, c *Compiler) Step { return c.compileMap(s) }}

func (c *Compiler) compileMap(s *MapOptions) Step {
	opt := c.opt
	st := &mapStep{path: c.field("map", s.Map, true), table: map[string]string{}, onMiss: s.OnMiss, def: s.Default}
	switch s.OnMiss {
	case "":
		st.onMiss = "keep"
	case "keep", "reject":
	case "default":
	default:
		c.add("on_miss", "%q is not keep, default or reject", s.OnMiss)
	}
	if s.Default != "" && st.onMiss != "default" {
		c.add("default", "default is used only with on_miss: default")
	}
	if s.Table == nil && s.CSV == "" {
		c.add("map", "map needs a table or a csv file")
	}
	for k, v := range s.Table {
		st.table[k] = v
	}
	if s.CSV != "" {
		c.readCSV(s.CSV, opt, st.table)
	}
	return st
}

// readCSV adds the rows of a two-column CSV file to table (CSVTable).
func (c *Compiler) readCSV(name string, opt Options, table map[string]string) {
	if opt.ReadFile == nil {
		c.add("csv", "cannot read %s here", name)
		return
	}
	data, err := opt.ReadFile(name)
	if err != nil {
		c.add("csv", "cannot read %s: %v", name, err)
		return
	}
	if err := CSVTable(name, data, table); err != nil {
		c.add("csv", "%v", err)
	}
}

// CSVTable adds the rows of a two-column CSV file (from,to) to table.
// Lines starting with # are comments; a first row "from,to" is a header;
// a value mapped twice is an error (naming its line, not the value's
// translation).
func CSVTable(name string, data []byte, table map[string]string) error {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = 2
	r.TrimLeadingSpace = true
	for row := 1; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if row == 1 && strings.EqualFold(rec[0], "from") && strings.EqualFold(rec[1], "to") {
			continue
		}
		if _, dup := table[rec[0]]; dup {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("%s line %d: %q is mapped twice", name, line, rec[0])
		}
		table[rec[0]] = rec[1]
	}
}
