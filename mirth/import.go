package mirth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hl7broker/hl7broker/script"
)

// Result is what Import wrote.
type Result struct {
	Config  string // DIR/hl7broker.yaml
	Files   []string
	Report  *Report
	Secrets []string // files holding secrets taken from the export (passwords) or made (tokens)
}

// Import translates exports into DIR: hl7broker.yaml, its scripts under
// scripts/, secrets under secrets/ (mode 0600), and report.txt.
func Import(exports []*Export, dir string) (*Result, error) {
	t := translate(exports)
	t.dir = dir
	return t.write()
}

// translate translates exports in memory.
func translate(exports []*Export) *translator {
	t := &translator{config: map[string]string{}, addrs: map[string]string{}, reported: map[string]bool{}, report: &Report{}, names: map[string]bool{}, byID: map[string]*Channel{},
		chained: map[string][]writer{}, files: map[string]string{}, secrets: map[string]string{}}
	t.cfg.DataDir = "./data"
	for _, ex := range exports {
		for _, lib := range ex.Libraries {
			t.library(lib)
		}
		for k, v := range ex.Configuration {
			t.config[k] = v
		}
		for _, c := range ex.Channels {
			t.channels = append(t.channels, c)
			if c.ID != "" {
				t.byID[c.ID] = c
			}
		}
	}
	t.slugs = map[*Channel]string{}
	if len(t.config) > 0 {
		if t.cfg.Scripts == nil {
			t.cfg.Scripts = &outScripts{}
		}
		t.cfg.Scripts.Configuration = t.config
		t.report.add("", "configuration map", Translated, "%d values: scripts.configuration ($cfg), and what ${name} stands for in connector settings", len(t.config))
	}
	for _, c := range t.channels {
		t.slugs[c] = t.unique(slug(c.Name, "channel"))
	}
	for _, c := range t.channels { // channel writers first: readers need them
		t.writers(c)
	}
	for _, c := range t.channels {
		t.channel(c)
	}
	order := map[string]int{"": -1}
	for i, c := range t.channels {
		if _, ok := order[c.Name]; !ok {
			order[c.Name] = i
		}
	}
	sort.SliceStable(t.report.Items, func(i, j int) bool { return order[t.report.Items[i].Channel] < order[t.report.Items[j].Channel] })
	return t
}

type translator struct {
	dir      string
	cfg      outConfig
	report   *Report
	names    map[string]bool
	channels []*Channel
	byID     map[string]*Channel
	slugs    map[*Channel]string
	chained  map[string][]writer // channel ID -> the channel writers that feed it
	memo     map[*Channel][]input
	reported map[string]bool   // disabled rules already named
	config   map[string]string // Mirth's configuration map: what ${name} stands for
	addrs    map[string]string // listening addresses taken, by whom
	dbNote   string            // a database destination's difference, for its report line
	files    map[string]string // path under dir -> content
	secrets  map[string]string
}

// writer is a Channel Writer destination of channel from.
type writer struct {
	from *Channel
	dest *Connector
}

var nonName = regexp.MustCompile(`[^a-z0-9_-]+`)

// slug is s as an hl7broker name: lower-case letters, digits, - and _.
func slug(s, fallback string) string {
	s = strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-_")
	if len(s) > 48 {
		s = strings.TrimRight(s[:48], "-_")
	}
	if s == "" {
		return fallback
	}
	return s
}

// unique is name, or name-2, name-3... if taken.
func (t *translator) unique(name string) string {
	n := name
	for i := 2; t.names[n]; i++ {
		n = name + "-" + strconv.Itoa(i)
	}
	t.names[n] = true
	return n
}

func (t *translator) library(lib Library) {
	var b strings.Builder
	part := "library " + lib.Name
	n := 0
	for _, tpl := range lib.Templates {
		if tpl.Type == "DRAG_AND_DROP_CODE" {
			t.report.add("", part+": template "+tpl.Name, Translated, "a code snippet for Mirth's editor: nothing to run")
			continue
		}
		fmt.Fprintf(&b, "// %s\n%s\n\n", oneLine(tpl.Name), strings.TrimRight(tpl.Code, " \t\n"))
		n++
		if p := problems(tpl.Code); len(p) > 0 {
			t.report.add("", part+": template "+tpl.Name, NotTranslated, "uses %s; calls of it will fail", strings.Join(p, ", "))
		} else {
			t.report.add("", part+": template "+tpl.Name, Translated, "")
		}
	}
	if n == 0 {
		return
	}
	file := "scripts/lib/" + slug(lib.Name, "library") + ".js"
	src := b.String()
	if _, err := script.RewriteForEach(src); err != nil {
		t.report.add("", part, NotTranslated, "its code does not compile: %v", err)
		return
	}
	if _, err := mustEngine().Compile(file, script.Step, src, true); err != nil {
		t.report.add("", part, NotTranslated, "its code does not compile: %v; written to %s.untranslated", err, file)
		t.files[file+".untranslated"] = src
		return
	}
	t.files[file] = src
	if t.cfg.Scripts == nil {
		t.cfg.Scripts = &outScripts{}
	}
	t.cfg.Scripts.Libraries = append(t.cfg.Scripts.Libraries, file)
}

// mustEngine compiles what the importer writes, to find what does not
// compile before check would.
var mustEngine = sync.OnceValue(func() *script.Engine {
	e, err := script.NewEngine(script.Options{})
	if err != nil {
		panic(err)
	}
	return e
})

// scriptFile writes src as a script file for kind, if it compiles; else it
// is kept beside as .untranslated and a script that stops the message with
// the reason stands in for it. It reports part.
func (t *translator) scriptFile(channel, part, file string, kind script.Kind, src string) string {
	status, note := Translated, "written to "+file
	if p := problems(src); len(p) > 0 {
		status, note = NotTranslated, "written to "+file+"; it uses "+strings.Join(p, ", ")+", and fails where it reaches that"
	}
	if _, err := mustEngine().Compile(file, kind, src, true); err != nil {
		var se *script.Error
		where := err.Error()
		if errors.As(err, &se) {
			where = fmt.Sprintf("line %d:%d: %s", se.Line, se.Column, se.Reason)
		}
		t.files[file+".untranslated"] = src
		src = fmt.Sprintf("// Not translated from Mirth: %s (%s).\n// The original is in %s.untranslated; until it is rewritten, every message\n// that reaches this script is dead-lettered with this reason.\nthrow new Error('not translated from Mirth: see the import report');\n",
			oneLine(part), where, filepath.Base(file))
		status, note = NotTranslated, "does not compile here ("+where+"); a script that dead-letters each message stands in for it"
		if kind == script.Condition {
			src = strings.Replace(src, "throw new Error('not translated from Mirth: see the import report');", "throw new Error('not translated from Mirth: see the import report');\nreturn false;", 1)
		}
	}
	t.report.add(channel, part, status, "%s", note)
	t.files[file] = src
	return file
}

// input is one way messages reach a channel's destinations: an origin
// (listener or source), the conditions on the way, the steps on the way.
type input struct {
	origin string
	when   []outWhen
	steps  []outStep
}

func (t *translator) channel(c *Channel) {
	name := t.slugs[c]
	if c.Disabled {
		t.report.add(c.Name, "channel", Different, "disabled in Mirth; imported")
	}
	for _, s := range []string{"preprocessingScript", "postprocessingScript", "deployScript", "undeployScript"} {
		if !trivial(c.Scripts[s]) {
			t.report.add(c.Name, strings.TrimSuffix(s, "Script")+" script", NotTranslated, "hl7broker runs scripts per route and destination only; move what it does into a step")
		}
	}
	inputs := t.inputs(c, map[*Channel]bool{})
	if len(inputs) == 0 {
		return
	}
	for _, d := range c.Destinations {
		if d.Disabled {
			t.report.add(c.Name, "destination "+d.Name, Different, "disabled in Mirth: not imported")
			continue
		}
		if strings.Contains(d.Class, "VmDispatcherProperties") {
			continue // a Channel Writer: its channel's routes come from here (writers)
		}
		dname := t.unique(slug(name+"-"+d.Name, name+"-dest"))
		dest, ok := t.destination(c, d, dname)
		if !ok {
			continue
		}
		t.cfg.Destinations = append(t.cfg.Destinations, dest)
		destWhen := t.filter(c, "destination "+d.Name, fmt.Sprintf("scripts/%s/%s-filter.js", name, slug(d.Name, "dest")), d.Filter)
		for i, in := range inputs {
			r := outRoute{Name: dname, From: []string{in.origin}, Transform: in.steps, To: []string{dname}}
			if len(inputs) > 1 {
				r.Name = t.unique(fmt.Sprintf("%s-via-%d", dname, i+1))
			} else {
				t.names[r.Name] = true
			}
			conds := flatten(append(append([]outWhen(nil), in.when...), destWhen...))
			switch len(conds) {
			case 0:
			case 1:
				r.When = &conds[0]
			default:
				r.When = &outWhen{All: conds}
			}
			t.cfg.Routes = append(t.cfg.Routes, r)
		}
	}
}

// inputs are the ways messages reach channel c's destinations: its own
// source, and each channel writer pointing at it (through that channel's
// own inputs), each with c's source filter and transformer after.
func (t *translator) inputs(c *Channel, seen map[*Channel]bool) []input {
	if ins, ok := t.memo[c]; ok {
		return ins
	}
	if seen[c] {
		t.report.add(c.Name, "channel writers", NotTranslated, "channels write to each other in a cycle: the cycle is cut here")
		return nil
	}
	seen[c] = true
	defer delete(seen, c)
	name := t.slugs[c]
	own, ok := t.sourceOf(c)
	if !ok {
		return nil
	}
	var ins []input
	ins = append(ins, input{origin: own})
	for _, w := range t.chained[c.ID] {
		ups := t.inputs(w.from, seen)
		wname := slug(w.dest.Name, "writer")
		wWhen := t.filter(w.from, "destination "+w.dest.Name, fmt.Sprintf("scripts/%s/%s-filter.js", t.slugs[w.from], wname), w.dest.Filter)
		wStep, wHasStep := t.transformer(w.from, "destination "+w.dest.Name, fmt.Sprintf("scripts/%s/%s-transformer.js", t.slugs[w.from], wname), w.dest.Steps, true)
		for _, up := range ups {
			in := input{origin: up.origin, when: append(append([]outWhen(nil), up.when...), wWhen...), steps: append([]outStep(nil), up.steps...)}
			if wHasStep {
				in.steps = append(in.steps, wStep)
			}
			ins = append(ins, in)
		}
	}
	when := t.filter(c, "source", fmt.Sprintf("scripts/%s/source-filter.js", name), c.Source.Filter)
	st, hasSteps := t.transformer(c, "source", fmt.Sprintf("scripts/%s/source-transformer.js", name), c.Source.Steps, true)
	for i := range ins {
		ins[i].when = append(ins[i].when, when...)
		if hasSteps {
			ins[i].steps = append(ins[i].steps, st)
		}
	}
	if t.memo == nil {
		t.memo = map[*Channel][]input{}
	}
	t.memo[c] = ins
	return ins
}

// filter is a filter as conditions: rules when each is expressible, else
// one script (file) with Mirth's semantics.
func (t *translator) filter(c *Channel, part, file string, rules []Rule) []outWhen {
	var enabled []Rule
	var at []int // each enabled rule's number in Mirth
	for i, r := range rules {
		if !r.Disabled {
			enabled, at = append(enabled, r), append(at, i+1)
		}
	}
	label := func(i int) string { return fmt.Sprintf("%s: filter rule %d (%s)", part, i, rules[i-1].Name) }
	disabled := func(upTo int) { // report the disabled rules before rule upTo, in order
		for i := 1; i < upTo; i++ {
			if rules[i-1].Disabled && !t.reported[label(i)+c.Name] {
				t.reported[label(i)+c.Name] = true
				t.report.add(c.Name, label(i), Different, "disabled in Mirth: not imported")
			}
		}
	}
	defer disabled(len(rules) + 1)
	if len(enabled) == 0 {
		return nil
	}
	if w, ok := filterWhen(enabled); ok {
		for j := range enabled {
			disabled(at[j])
			t.report.add(c.Name, label(at[j]), Translated, "a when condition")
		}
		return []outWhen{*w}
	}
	for j, r := range enabled {
		disabled(at[j])
		code := r.Script
		if r.Kind == "rule builder" {
			code = ruleExpression(r)
		}
		t.stepItem(c, label(at[j]), r.Kind, code)
	}
	f := t.scriptFile(c.Name, part+": filter ("+countOf(len(enabled), "rule")+")", file, script.Condition, filterScript(enabled))
	return []outWhen{{ScriptFile: f, Mirth: true}}
}

func countOf(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// usableSteps are the steps of a transformer that a script can run, each
// reported; the rest are reported and left out.
func (t *translator) usableSteps(c *Channel, part string, all []Step) []Step {
	var steps []Step
	for i, s := range all {
		label := fmt.Sprintf("%s: transformer step %d (%s)", part, i+1, s.Name)
		switch {
		case s.Disabled:
			t.report.add(c.Name, label, Different, "disabled in Mirth: not imported")
		case s.Kind != "javascript" && s.Kind != "mapper" && s.Kind != "message builder":
			t.report.add(c.Name, label, NotTranslated, "a %s step has no counterpart here; rewrite it as a script step", shortClass(s.Kind))
		default:
			steps = append(steps, s)
			t.stepItem(c, label, s.Kind, stepCode(s))
		}
	}
	return steps
}

// stepItem reports one transformer step or filter rule that became part
// of a script.
func (t *translator) stepItem(c *Channel, label, kind, code string) {
	if kind != "javascript" && kind != "rule builder" && kind != "mapper" && kind != "message builder" {
		t.report.add(c.Name, label, NotTranslated, "a %s: it stands as a rule that dead-letters each message it sees", shortClass(kind))
		return
	}
	if p := problems(code); len(p) > 0 {
		t.report.add(c.Name, label, NotTranslated, "uses %s", strings.Join(p, ", "))
		return
	}
	t.report.add(c.Name, label, Translated, "as Mirth runs a %s, in a script with mirth: true", kind)
}

// stepCode is what a step runs, to scan for what cannot run here.
func stepCode(s Step) string {
	if s.Kind == "javascript" {
		return s.Script
	}
	return s.Segment + " " + s.Mapping
}

// transformer is a transformer as one script step (file), with its
// outbound template when it builds HL7 v2 from one. asStep: its output
// is the message routed on (it must be HL7 v2).
func (t *translator) transformer(c *Channel, part, file string, tr Transformer, asStep bool) (outStep, bool) {
	steps := t.usableSteps(c, part, tr.Steps)
	template := ""
	if strings.TrimSpace(tr.OutboundTemplate) != "" {
		template = tr.OutboundTemplate
	}
	if asStep && tr.OutboundType != "" && tr.OutboundType != "HL7V2" {
		t.report.add(c.Name, part+": transformer", NotTranslated, "its outbound data type is %s: the message a route passes on is HL7 v2 (a destination's encoder may make %s)", tr.OutboundType, tr.OutboundType)
		return outStep{}, false
	}
	if len(steps) == 0 && template == "" {
		return outStep{}, false
	}
	f := t.scriptFile(c.Name, part+": transformer ("+countOf(len(steps), "step")+")", file, script.Step, transformerScript(steps))
	return outStep{ScriptFile: f, Mirth: true, Template: template}, true
}

func shortClass(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// writers records each Channel Writer of c against the channel it feeds.
func (t *translator) writers(c *Channel) {
	for _, d := range c.Destinations {
		if d.Disabled || !strings.Contains(d.Class, "VmDispatcherProperties") {
			continue
		}
		target := d.Props.str("channelId")
		part := "destination " + d.Name + " (Channel Writer)"
		to, ok := t.byID[target]
		switch {
		case target == "" || target == "none":
			t.report.add(c.Name, part, Different, "writes to no channel: not imported")
		case !ok:
			t.report.add(c.Name, part, NotTranslated, "writes to channel %s, which is not among the files imported", target)
		default:
			t.chained[target] = append(t.chained[target], writer{from: c, dest: d})
			note := "routes from this channel's source straight to " + to.Name + "'s destinations"
			if tpl := d.Props.str("channelTemplate"); tpl != "" && tpl != "${message.encodedData}" {
				t.report.add(c.Name, part, Different, "%s; its template %q is not applied (the message itself is passed)", note, tpl)
			} else {
				t.report.add(c.Name, part, Translated, "%s", note)
			}
		}
	}
}

// secret keeps value in secrets/name (0600) and returns its reference.
func (t *translator) secret(name, value string) string {
	file := "secrets/" + name
	t.secrets[file] = value
	return "${file:" + file + "}"
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// millis is a Mirth duration in milliseconds as a Go duration ("" for 0
// or none).
func millis(s string) string {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return ""
	}
	return (time.Duration(n) * time.Millisecond).String()
}

func (t *translator) write() (*Result, error) {
	res := &Result{Config: filepath.Join(t.dir, "hl7broker.yaml"), Report: t.report}
	if len(t.cfg.Listeners) == 0 && len(t.cfg.Sources) == 0 {
		return res, errors.New("nothing to write: no channel's source could be translated")
	}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for f := range t.files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		path := filepath.Join(t.dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(t.files[f]), 0o644); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, path)
	}
	for f, v := range t.secrets {
		path := filepath.Join(t.dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			return nil, err
		}
		res.Secrets = append(res.Secrets, path)
	}
	sort.Strings(res.Secrets)
	y, err := yaml.Marshal(t.cfg)
	if err != nil {
		return nil, err
	}
	head := "# Imported from Mirth Connect by `hl7broker mirth import`. What was translated,\n" +
		"# and what was not, is in report.txt beside this file. Try it with:\n" +
		"#   hl7broker check --config hl7broker.yaml\n" +
		"#   hl7broker route test --config hl7broker.yaml --out out/ MESSAGE_FILE\n"
	if err := os.WriteFile(res.Config, append([]byte(head), y...), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(t.dir, "report.txt"), []byte(t.report.String()), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// flatten lifts the members of an all that has nothing else into the list.
func flatten(ws []outWhen) []outWhen {
	var out []outWhen
	for _, w := range ws {
		if len(w.All) > 0 && w.Field == "" && w.Script == "" && w.ScriptFile == "" && len(w.Any) == 0 && w.Not == nil {
			out = append(out, flatten(w.All)...)
			continue
		}
		out = append(out, w)
	}
	return out
}

var mirthVar = regexp.MustCompile(`\$\{([^{}]+)\}`)

// resolve fills ${name} in a connector setting from the configuration map;
// ok is false when a placeholder has no value (or the setting is empty):
// a setting Mirth filled per message cannot be one here.
func (t *translator) resolve(s string) (string, bool) {
	ok := strings.TrimSpace(s) != ""
	out := mirthVar.ReplaceAllStringFunc(s, func(m string) string {
		v, found := t.config[m[2:len(m)-1]]
		if !found {
			ok = false
			return m
		}
		return v
	})
	return strings.TrimSpace(out), ok
}

// settings resolves each setting, reporting the connector (part) not
// translated when one cannot be.
func (t *translator) settings(c *Channel, part string, names []string, values ...*string) bool {
	for i, v := range values {
		r, ok := t.resolve(*v)
		if !ok {
			what := "is empty"
			if strings.TrimSpace(*v) != "" {
				what = fmt.Sprintf("is %q, a value Mirth filled in (export the configuration map with the channels, or set it here)", *v)
			}
			t.report.add(c.Name, part, NotTranslated, "its %s %s", names[i], what)
			return false
		}
		*v = r
	}
	return true
}

// listen claims a listening address for who; false (reported) when an
// earlier connector has it.
func (t *translator) listen(c *Channel, part, addr, who string) bool {
	if other, taken := t.addrs[addr]; taken {
		t.report.add(c.Name, part, NotTranslated, "%s also listens on %s (one of them must move)", other, addr)
		return false
	}
	t.addrs[addr] = who
	return true
}
