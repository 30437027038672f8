package transforms

import (
	"errors"
	"fmt"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

// ScriptOptions are the keys of script: JavaScript that edits the message
// and sets variables (docs/scripts.md).
type ScriptOptions struct {
	Script string `mapstructure:"script"`
	Mirth  bool   `mapstructure:"mirth"` // written for Mirth Connect (a transformer)
	// Template is Mirth's outbound template (tmp): HL7 v2 that becomes
	// the message once the script has filled it in.
	Template string `mapstructure:"template"`
}

// ScriptFileOptions are the keys of script_file: the same, from a file
// beside the config.
type ScriptFileOptions struct {
	ScriptFile string `mapstructure:"script_file"`
	Mirth      bool   `mapstructure:"mirth"`
	Template   string `mapstructure:"template"`
}

var (
	scriptType = StepType[ScriptOptions]{Name: "script", Compile: func(s *ScriptOptions, c *Compiler) Step {
		return c.compileScript("script", c.scriptName(), s.Script, s.Mirth, s.Template)
	}}
	scriptFileType = StepType[ScriptFileOptions]{Name: "script_file", Compile: func(s *ScriptFileOptions, c *Compiler) Step {
		src, ok := c.readScript("script_file", s.ScriptFile)
		if !ok {
			return nil
		}
		return c.compileScript("script_file", s.ScriptFile, src, s.Mirth, s.Template)
	}}
)

// scriptName names an inline script in errors: the route and step.
func (c *Compiler) scriptName() string {
	route := c.opt.Name
	if route == "" {
		route = "transform"
	}
	return fmt.Sprintf("%s step %d", route, c.index+1)
}

func (c *Compiler) readScript(key, name string) (string, bool) {
	if c.opt.ReadFile == nil {
		c.add(key, "cannot read %s here", name)
		return "", false
	}
	data, err := c.opt.ReadFile(name)
	if err != nil {
		c.add(key, "cannot read %s: %v", name, err)
		return "", false
	}
	return string(data), true
}

func (c *Compiler) compileScript(key, name, src string, mirth bool, template string) Step {
	if c.opt.Scripts == nil {
		c.add(key, "scripts cannot run here")
		return nil
	}
	if template != "" {
		if !mirth {
			c.add("template", "template (Mirth's tmp) goes with mirth: true")
		} else if _, err := hl7.Parse([]byte(template)); err != nil {
			c.add("template", "a step's template is an HL7 v2 message: %v", err)
		}
	}
	s, err := c.opt.Scripts.Compile(name, script.Step, src, mirth)
	if err != nil {
		c.scriptProblem(key, err)
		return nil
	}
	what := "script"
	if key == "script_file" {
		what = "script_file " + name
	}
	return &scriptStep{s: s, template: template, what: what}
}

// scriptProblem adds a script's compile error at key, with its position.
func (c *Compiler) scriptProblem(key string, err error) {
	var se *script.Error
	if errors.As(err, &se) && se.Line > 0 {
		c.add(key, "line %d:%d: %s", se.Line, se.Column, se.Reason)
		return
	}
	c.add(key, "%v", err)
}

type scriptStep struct {
	s        *script.Script
	template string
	what     string // "script", or "script_file scripts/adt.js"
}

func (s *scriptStep) String() string { return s.what }

func (s *scriptStep) Apply(m *hl7.Message) error { return s.ApplyState(m, &State{}) }

func (s *scriptStep) ApplyState(m *hl7.Message, st *State) error {
	in := script.Input{Message: m, Vars: st.Vars, Log: st.Log, Template: s.template}
	_, err := s.s.Run(&in)
	st.Vars = in.Vars
	return err
}
