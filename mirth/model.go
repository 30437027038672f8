package mirth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Export is what one or more export files hold.
type Export struct {
	Channels  []*Channel
	Libraries []Library
	// Configuration is Mirth's configuration map (its own export, a
	// <map>): the values ${name} stands for in connector settings.
	Configuration map[string]string
}

// Library is a code template library: functions every channel may call.
type Library struct {
	Name      string
	Templates []Template
}

// Template is one code template.
type Template struct {
	Name string
	Type string // FUNCTION, DRAG_AND_DROP_CODE, COMPILED_CODE
	Code string
}

// Channel is one Mirth channel.
type Channel struct {
	ID, Name     string
	Disabled     bool
	Source       *Connector
	Destinations []*Connector
	// The channel's scripts: deploy, undeploy, preprocessor, postprocessor.
	Scripts map[string]string
}

// Connector is a channel's source or one of its destinations.
type Connector struct {
	Name      string
	Transport string // "TCP Listener", "HTTP Sender", ...
	Class     string // its properties' class
	Disabled  bool
	Props     *node
	Filter    []Rule
	Steps     Transformer
	Response  Transformer // a destination's response transformer
}

// Rule is one filter rule.
type Rule struct {
	Kind      string // "rule builder", "javascript", or the element's name
	Name      string
	Operator  string // AND, OR (NONE for the first)
	Disabled  bool
	Script    string // javascript
	Field     string // rule builder
	Condition string
	Values    []string
}

// Step is one transformer step.
type Step struct {
	Kind     string // "javascript", "mapper", "message builder", or the element's name
	Name     string
	Disabled bool
	Script   string
	Variable string // mapper
	Scope    string // mapper: CHANNEL, CONNECTOR, GLOBAL, GLOBAL_CHANNEL, RESPONSE
	Segment  string // message builder: the target, such as tmp['PID']['PID.5']
	Mapping  string
	Default  string
	Replace  [][2]string // regular expression, replacement (JavaScript expressions)
}

// Transformer is a connector's steps and data types.
type Transformer struct {
	Steps            []Step
	InboundType      string // HL7V2, XML, JSON, RAW, DELIMITED, ...
	OutboundType     string
	InboundTemplate  string
	OutboundTemplate string
}

// ReadFiles reads export files, naming on w each that cannot be read and
// why.
func ReadFiles(w io.Writer, names []string) []*Export {
	var exports []*Export
	for _, f := range names {
		data, err := os.ReadFile(f)
		if err == nil {
			var ex *Export
			if ex, err = Read(data); err == nil {
				exports = append(exports, ex)
				continue
			}
		}
		fmt.Fprintf(w, "%s: %v\n", f, err)
	}
	return exports
}

// Written says what Import wrote, a line for w.
func (r *Result) Written(w io.Writer) {
	fmt.Fprintf(w, "\nwrote %s, %d script file(s) and report.txt", r.Config, len(r.Files))
	if len(r.Secrets) > 0 {
		fmt.Fprintf(w, "; secrets (mode 0600, keep them out of git) in %d file(s) under secrets/", len(r.Secrets))
	}
	fmt.Fprintln(w)
}

// Read reads one export file's channels and libraries.
func Read(data []byte) (*Export, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	ex := &Export{}
	if root.name == "map" {
		ex.Configuration = readConfigurationMap(root)
		if len(ex.Configuration) > 0 {
			return ex, nil
		}
	}
	var walk func(n *node)
	walk = func(n *node) {
		switch n.name {
		case "channel":
			if n.child("sourceConnector") != nil {
				ex.Channels = append(ex.Channels, readChannel(n))
			}
		case "codeTemplateLibrary":
			ex.Libraries = append(ex.Libraries, readLibrary(n))
			return
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(root)
	if len(ex.Channels) == 0 && len(ex.Libraries) == 0 {
		return nil, errors.New("no Mirth channel or code template library in it (a channel export's root is <channel>)")
	}
	return ex, nil
}

func readChannel(n *node) *Channel {
	c := &Channel{ID: n.str("id"), Name: n.str("name"), Scripts: map[string]string{}}
	c.Disabled = n.str("exportData", "metadata", "enabled") == "false" || n.str("enabled") == "false"
	c.Source = readConnector(n.child("sourceConnector"))
	for _, d := range n.child("destinationConnectors").children() {
		if d.name == "connector" {
			c.Destinations = append(c.Destinations, readConnector(d))
		}
	}
	for _, s := range []string{"preprocessingScript", "postprocessingScript", "deployScript", "undeployScript"} {
		c.Scripts[s] = n.raw(s)
	}
	return c
}

func readConnector(n *node) *Connector {
	c := &Connector{Name: n.str("name"), Transport: n.str("transportName"), Props: n.child("properties"), Disabled: n.str("enabled") == "false"}
	if c.Props != nil {
		c.Class = c.Props.attrs["class"]
	}
	c.Filter = readRules(n.child("filter"))
	c.Steps = readTransformer(n.child("transformer"))
	c.Response = readTransformer(n.child("responseTransformer"))
	return c
}

// readRules reads a filter: elements (Mirth 3.4 and later) or rules
// (3.0 to 3.3, each with its generated script).
func readRules(f *node) []Rule {
	var rules []Rule
	for _, e := range f.child("elements").children() {
		r := Rule{Name: e.str("name"), Operator: e.str("operator"), Disabled: e.str("enabled") == "false"}
		switch {
		case strings.HasSuffix(e.name, "RuleBuilderRule"):
			r.Kind, r.Field, r.Condition = "rule builder", e.str("field"), e.str("condition")
			for _, v := range e.child("values").children() {
				r.Values = append(r.Values, v.text)
			}
		case strings.HasSuffix(e.name, "JavaScriptRule"):
			r.Kind, r.Script = "javascript", e.raw("script")
		default:
			r.Kind = e.name
		}
		rules = append(rules, r)
	}
	for _, e := range f.child("rules").children() { // Mirth 3.0 to 3.3: the generated script
		r := Rule{Kind: "javascript", Name: e.str("name"), Operator: e.str("operator"), Script: e.raw("script")}
		if strings.TrimSpace(r.Script) == "" {
			r.Kind = "rule of Mirth before 3.4 without its script"
		}
		rules = append(rules, r)
	}
	return rules
}

func readTransformer(t *node) Transformer {
	tr := Transformer{InboundType: t.str("inboundDataType"), OutboundType: t.str("outboundDataType"),
		InboundTemplate: t.str("inboundTemplate"), OutboundTemplate: t.str("outboundTemplate")}
	for _, e := range t.child("elements").children() {
		tr.Steps = append(tr.Steps, readStep(e))
	}
	for _, e := range t.child("steps").children() {
		tr.Steps = append(tr.Steps, Step{Kind: "javascript", Name: e.str("name"), Script: e.raw("script")})
	}
	return tr
}

func readStep(e *node) Step {
	s := Step{Name: e.str("name"), Disabled: e.str("enabled") == "false"}
	switch {
	case strings.HasSuffix(e.name, "JavaScriptStep"):
		s.Kind, s.Script = "javascript", e.raw("script")
	case strings.HasSuffix(e.name, "MapperStep"):
		s.Kind, s.Variable, s.Scope = "mapper", e.str("variable"), e.str("scope")
	case strings.HasSuffix(e.name, "MessageBuilderStep"):
		s.Kind, s.Segment = "message builder", e.str("messageSegment")
	default:
		s.Kind = e.name
		return s
	}
	s.Mapping, s.Default = e.str("mapping"), e.raw("defaultValue")
	for _, p := range e.child("replacements").children() {
		s.Replace = append(s.Replace, [2]string{p.str("left"), p.str("right")})
	}
	return s
}

func readLibrary(n *node) Library {
	lib := Library{Name: n.str("name")}
	for _, t := range n.child("codeTemplates").children() {
		code, typ := t.raw("properties", "code"), t.str("properties", "type")
		if code == "" {
			code, typ = t.raw("code"), t.str("type")
		}
		lib.Templates = append(lib.Templates, Template{Name: t.str("name"), Type: typ, Code: code})
	}
	return lib
}

// readConfigurationMap reads Mirth's configuration map export: entries of a
// key and a ConfigurationProperty (a value and a comment), or a plain
// string.
func readConfigurationMap(n *node) map[string]string {
	out := map[string]string{}
	for _, e := range n.children() {
		if e.name != "entry" || len(e.kids) < 2 {
			continue
		}
		key, v := strings.TrimSpace(e.kids[0].text), e.kids[1]
		if val := v.child("value"); val != nil {
			out[key] = strings.TrimSpace(val.text)
		} else {
			out[key] = strings.TrimSpace(v.text)
		}
	}
	return out
}
