package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/script"
	"github.com/hl7broker/hl7broker/transforms"
)

// ScriptsConfig is what every script shares: limits, libraries (Mirth's
// code templates), code tables and the configuration map
// (docs/scripts.md).
type ScriptsConfig struct {
	TimeLimit   time.Duration `mapstructure:"time_limit"`   // one run; default 1s
	MemoryLimit int64         `mapstructure:"memory_limit"` // bytes the heap may grow during one slow run; default 256 MiB
	StackLimit  int           `mapstructure:"stack_limit"`  // call depth; default 1000
	// Libraries are script files whose functions every script sees.
	Libraries []string `mapstructure:"libraries"`
	// Tables are code tables for lookup(name, key), inline or from a
	// two-column CSV file (from,to), as the map step's.
	Tables map[string]TableConfig `mapstructure:"tables"`
	// Configuration is Mirth's configurationMap ($cfg).
	Configuration map[string]string `mapstructure:"configuration"`
	// Log writes what scripts log to the broker's log. Off by default: a
	// script may log values from messages.
	Log bool `mapstructure:"log"`
}

// TableConfig is one code table.
type TableConfig struct {
	Table map[string]string `mapstructure:"table"`
	CSV   string            `mapstructure:"csv"`
}

// EncoderConfig is a destination's encoder: a script that returns the
// payload to send, and/or a text with ${...} placeholders (Mirth's
// Velocity) in which ${message.encodedData} is the script's payload.
type EncoderConfig struct {
	Script     string `mapstructure:"script"`
	ScriptFile string `mapstructure:"script_file"`
	Mirth      bool   `mapstructure:"mirth"`
	// Template is Mirth's outbound template (tmp): HL7 v2, JSON or XML
	// that the script fills in; the payload unless the script returns one.
	Template string `mapstructure:"template"`
	// Velocity is the payload as a text: ${name} (a variable),
	// ${message.encodedData}, ${message.rawData}, ${UUID}, ${DATE}.
	Velocity string `mapstructure:"velocity"`
}

// ReadFile reads a file the config names, relative to the config file.
func (c *Config) ReadFile(name string) ([]byte, error) {
	if !filepath.IsAbs(name) && c.dir != "" {
		name = filepath.Join(c.dir, name)
	}
	return os.ReadFile(name)
}

// ScriptEngine is the script engine of this config, made once by Validate.
// Nil when it could not be made (Validate said why).
func (c *Config) ScriptEngine() *script.Engine {
	if c.engine == nil && !c.engineTried {
		var v validator
		c.validateScripts(&v)
	}
	return c.engine
}

func (c *Config) validateScripts(v *validator) {
	c.engineTried = true
	s := c.Scripts
	if s.TimeLimit < 0 || s.MemoryLimit < 0 || s.StackLimit < 0 {
		v.add("scripts", "time_limit, memory_limit and stack_limit must not be negative")
	}
	opts := script.Options{
		Limits: script.Limits{Time: s.TimeLimit, Memory: s.MemoryLimit, Stack: s.StackLimit},
		Tables: map[string]map[string]string{},
	}
	for i, name := range s.Libraries {
		data, err := c.ReadFile(name)
		if err != nil {
			v.add(fmt.Sprintf("scripts.libraries[%d]", i), "cannot read %s: %v", name, err)
			continue
		}
		opts.Libraries = append(opts.Libraries, script.Library{Name: name, Source: string(data), Mirth: true})
	}
	for name, t := range s.Tables {
		key := "scripts.tables." + name
		table := map[string]string{}
		for k, val := range t.Table {
			table[k] = val
		}
		switch {
		case t.CSV != "" && t.Table != nil:
			v.add(key, "a table is inline (table) or a csv file, not both")
		case t.CSV != "":
			if err := c.readTable(t.CSV, table); err != nil {
				v.add(key+".csv", "%v", err)
			}
		case t.Table == nil:
			v.add(key, "a table needs table (inline) or csv (a file)")
		}
		opts.Tables[name] = table
	}
	if s.Configuration != nil {
		opts.Tables["configuration"] = s.Configuration
	}
	e, err := script.NewEngine(opts)
	if err != nil {
		var se *script.Error
		if errors.As(err, &se) {
			for i, name := range s.Libraries {
				if name == se.Script {
					v.add(fmt.Sprintf("scripts.libraries[%d]", i), "%s", strings.TrimPrefix(se.Error(), "script "))
					return
				}
			}
		}
		v.add("scripts.libraries", "%v", err)
		return
	}
	c.engine = e
}

// readTable adds a two-column CSV file's rows (from,to) to table.
func (c *Config) readTable(name string, table map[string]string) error {
	data, err := c.ReadFile(name)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", name, err)
	}
	return transforms.CSVTable(name, data, table)
}

// validateEncoder checks a destination's encoder and compiles its script.
func (c *Config) validateEncoder(v *validator, key string, d DestinationConfig) {
	enc := d.Encoder
	if enc == nil {
		return
	}
	key += ".encoder"
	if d.Encoding != "" && d.Encoding != "er7" {
		v.add(key, "an encoder makes the payload itself: it does not go with encoding %s", d.Encoding)
	}
	if enc.Script == "" && enc.ScriptFile == "" && enc.Velocity == "" {
		v.add(key, "an encoder needs script, script_file or velocity")
		return
	}
	if enc.Template != "" && !enc.Mirth {
		v.add(key+".template", "template (Mirth's tmp) goes with mirth: true")
	}
	if _, err := c.Encoder(d); err != nil {
		var se *script.Error
		at := key + ".script"
		if enc.ScriptFile != "" {
			at = key + ".script_file"
		}
		if errors.As(err, &se) && se.Line > 0 {
			v.add(at, "line %d:%d: %s", se.Line, se.Column, se.Reason)
			return
		}
		v.add(at, "%v", err)
	}
}

// Encoder compiles destination d's encoder script (nil when it has no
// script: none, or velocity only).
func (c *Config) Encoder(d DestinationConfig) (*script.Script, error) {
	enc := d.Encoder
	if enc == nil || (enc.Script == "" && enc.ScriptFile == "") {
		return nil, nil
	}
	e := c.ScriptEngine()
	if e == nil {
		return nil, errors.New("the scripts section has problems")
	}
	src, name := enc.Script, "destination "+d.Name+" encoder"
	switch {
	case enc.Script != "" && enc.ScriptFile != "":
		return nil, errors.New("an encoder takes script or script_file, not both")
	case enc.ScriptFile != "":
		data, err := c.ReadFile(enc.ScriptFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", enc.ScriptFile, err)
		}
		src, name = string(data), enc.ScriptFile
	}
	return e.Compile(name, script.Encoder, src, enc.Mirth)
}

// EncoderDigest changes when anything destination d's encoder runs with
// changes: the encoder, the scripts section, the files they read. "" for
// a destination without one. A reload restarts a destination whose digest
// changed.
func (c *Config) EncoderDigest(d DestinationConfig) string {
	if d.Encoder == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%#v\n%#v\n", *d.Encoder, c.Scripts)
	files := append([]string{d.Encoder.ScriptFile}, c.Scripts.Libraries...)
	for _, t := range c.Scripts.Tables {
		files = append(files, t.CSV)
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		data, _ := c.ReadFile(f)
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
