package mirth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hl7broker/hl7broker/script"
)

// Filters and transformers as the scripts hl7broker runs with mirth: true.
// Mirth builds one function of a filter's rules and one of a
// transformer's steps (steps share their variables); so do these.

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`)
	return "'" + r.Replace(s) + "'"
}

// ruleExpression is a Rule Builder rule as a JavaScript expression, with
// Mirth's meaning: field is an expression (msg['PID']['PID.8']['PID.8.1'].toString()),
// values are expressions too ('M').
func ruleExpression(r Rule) string {
	field := "(" + r.Field + ")"
	values := r.Values
	join := func(op, sep string, each func(v string) string) string {
		if len(values) == 0 {
			return each(`""`)
		}
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = each(v)
		}
		return "(" + strings.Join(parts, sep) + ")"
	}
	switch r.Condition {
	case "NOT_EXIST":
		return field + ".length == 0"
	case "EQUALS":
		return join("==", " || ", func(v string) string { return field + " == " + v })
	case "NOT_EQUAL":
		return join("!=", " && ", func(v string) string { return field + " != " + v })
	case "CONTAINS":
		return join("", " || ", func(v string) string { return field + ".indexOf(" + v + ") != -1" })
	case "NOT_CONTAIN":
		return join("", " && ", func(v string) string { return field + ".indexOf(" + v + ") == -1" })
	}
	return field + ".length > 0" // EXISTS
}

// filterScript is a filter's rules as one script returning whether the
// message is accepted. Rules combine left to right with && and ||, with
// JavaScript's precedence, as in Mirth.
func filterScript(rules []Rule) string {
	var b strings.Builder
	var expr []string
	for i, r := range rules {
		fmt.Fprintf(&b, "// rule %d: %s\nfunction rule%d() {\n", i+1, oneLine(r.Name), i+1)
		switch r.Kind {
		case "rule builder":
			fmt.Fprintf(&b, "\treturn %s;\n", ruleExpression(r))
		case "javascript":
			b.WriteString(strings.TrimRight(r.Script, " \t\n") + "\n")
		default: // never a silent "no": the message is dead-lettered with a reason
			b.WriteString("\tthrow new Error('filter rule not translated from Mirth: see the import report');\n")
		}
		b.WriteString("}\n\n")
		call := fmt.Sprintf("rule%d()", i+1)
		if i > 0 {
			op := "&&"
			if strings.EqualFold(r.Operator, "OR") {
				op = "||"
			}
			call = op + " " + call
		}
		expr = append(expr, call)
	}
	fmt.Fprintf(&b, "return !!(%s);\n", strings.Join(expr, " "))
	return b.String()
}

var mapScopes = map[string]string{"CHANNEL": "channelMap", "CONNECTOR": "connectorMap", "GLOBAL": "globalMap",
	"GLOBAL_CHANNEL": "globalChannelMap", "RESPONSE": "responseMap", "": "channelMap"}

// transformerScript is a transformer's steps as one script.
func transformerScript(steps []Step) string {
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "// step %d: %s (%s)\n", i+1, oneLine(s.Name), s.Kind)
		switch s.Kind {
		case "javascript":
			b.WriteString(strings.TrimRight(s.Script, " \t\n") + "\n")
		case "mapper", "message builder":
			mapping := strings.TrimSpace(s.Mapping)
			if mapping == "" {
				mapping = "''"
			}
			fmt.Fprintf(&b, "var mapping;\ntry {\n\tmapping = %s;\n} catch (e) {\n\tlogger.error(e);\n\tmapping = '';\n}\n", mapping)
			repl := make([]string, len(s.Replace))
			for j, r := range s.Replace {
				repl[j] = fmt.Sprintf("[%s, %s]", r[0], r[1])
			}
			value := fmt.Sprintf("validate(mapping, %s, [%s])", jsString(s.Default), strings.Join(repl, ", "))
			if s.Kind == "mapper" {
				fmt.Fprintf(&b, "%s.put(%s, %s);\n", mapScopes[s.Scope], jsString(s.Variable), value)
			} else {
				fmt.Fprintf(&b, "%s = %s;\n", s.Segment, value)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// simplePath matches a Rule Builder field or a mapping that reads one
// component: msg['PID']['PID.3']['PID.3.1'].toString(), with an optional
// subcomponent.
var simplePath = regexp.MustCompile(`^msg(?:\[['"]([A-Z][A-Z0-9]{2})['"]\]|\.([A-Z][A-Z0-9]{2}))\[['"]([A-Z][A-Z0-9]{2})\.(\d+)['"]\]\[['"]([A-Z][A-Z0-9]{2})\.(\d+)\.(\d+)['"]\](?:\[['"]([A-Z][A-Z0-9]{2})\.(\d+)\.(\d+)\.(\d+)['"]\])?\.toString\(\)$`)

// singleSegments appear once in a message, so that a test of their
// first value means what Mirth's comparison of the whole list means.
var singleSegments = map[string]bool{"MSH": true, "EVN": true, "PID": true, "PD1": true, "PV1": true, "PV2": true, "MRG": true}

// pathOf is the hl7broker path a Mirth expression reads (PID-3.1), if it
// is one of a single segment's components.
func pathOf(expr string) (string, bool) {
	p, ok := componentPath(expr)
	if !ok || !singleSegments[p[:3]] {
		return "", false
	}
	return p, true
}

// componentPath is the path of a component a Mirth expression reads, in
// any segment.
func componentPath(expr string) (string, bool) {
	m := simplePath.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return "", false
	}
	seg := m[1] + m[2]
	if m[3] != seg || m[5] != seg || m[4] != m[6] || (m[8] != "" && (m[8] != seg || m[9] != m[4] || m[10] != m[7])) {
		return "", false
	}
	p := fmt.Sprintf("%s-%s.%s", seg, m[4], m[7])
	if m[11] != "" {
		p += "." + m[11]
	}
	return p, true
}

var jsLiteral = regexp.MustCompile(`^(?:'([^'\\]*)'|"([^"\\]*)")$`)

// literals are values that are plain string literals, as text.
func literals(values []string) ([]string, bool) {
	out := make([]string, len(values))
	for i, v := range values {
		m := jsLiteral.FindStringSubmatch(strings.TrimSpace(v))
		if m == nil {
			return nil, false
		}
		out[i] = m[1] + m[2]
	}
	return out, true
}

// ruleWhen is a Rule Builder rule as a condition, when it is expressible
// as one with Mirth's meaning.
func ruleWhen(r Rule) (outWhen, bool) {
	if r.Kind != "rule builder" {
		return outWhen{}, false
	}
	path, ok := pathOf(r.Field)
	if !ok {
		return outWhen{}, false
	}
	values, ok := literals(r.Values)
	if !ok || (len(values) == 0 && (r.Condition == "EQUALS" || r.Condition == "NOT_EQUAL" || r.Condition == "CONTAINS" || r.Condition == "NOT_CONTAIN")) {
		return outWhen{}, false
	}
	yes := true
	w := outWhen{Field: path}
	switch r.Condition {
	case "EXISTS", "":
		w.Exists = &yes
	case "NOT_EXIST":
		w.Empty = &yes
	case "EQUALS", "NOT_EQUAL":
		if len(values) == 1 {
			w.Equals = &values[0]
		} else {
			w.In = values
		}
	case "CONTAINS", "NOT_CONTAIN":
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = regexp.QuoteMeta(v)
		}
		re := strings.Join(quoted, "|")
		w.Matches = &re
	default:
		return outWhen{}, false
	}
	if r.Condition == "NOT_EQUAL" || r.Condition == "NOT_CONTAIN" {
		return outWhen{Not: &w}, true
	}
	return w, true
}

// filterWhen is a filter as conditions, when every rule is expressible:
// rules joined by AND are all, groups joined by OR are any.
func filterWhen(rules []Rule) (*outWhen, bool) {
	var groups [][]outWhen
	for i, r := range rules {
		w, ok := ruleWhen(r)
		if !ok {
			return nil, false
		}
		if i == 0 || strings.EqualFold(r.Operator, "OR") {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], w)
	}
	all := func(ws []outWhen) outWhen {
		if len(ws) == 1 {
			return ws[0]
		}
		return outWhen{All: ws}
	}
	if len(groups) == 1 {
		w := all(groups[0])
		return &w, true
	}
	w := outWhen{}
	for _, g := range groups {
		w.Any = append(w.Any, all(g))
	}
	return &w, true
}

// unsupported are what a script uses that hl7broker's scripts do not
// have, each with why.
var unsupported = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`(?m)(?:^|[=(,:?]|return)\s*<[A-Za-z_][\w.\-]*[\s/>]`), "an E4X XML literal (write new XML('<…/>') instead)"},
	{regexp.MustCompile(`\bDatabaseConnectionFactory\b|\bDatabaseConnection\b`), "a database call"},
	{regexp.MustCompile(`\bFileUtil\b`), "file access"},
	{regexp.MustCompile(`\bSMTPConnectionFactory\b|\bSMTPConnection\b`), "sending mail"},
	{regexp.MustCompile(`\brouter\.routeMessage|\bVMRouter\b`), "routing to another channel from a script (use a route)"},
	{regexp.MustCompile(`\bHTTPUtil\b|\bAttachmentUtil\b|\baddAttachment\b|\bgetAttachments?\b`), "HTTP or attachment helpers"},
	{regexp.MustCompile(`\bimportPackage\b|\bimportClass\b|\bJavaImporter\b`), "importing Java classes"},
	{regexp.MustCompile(`\bdestinationSet\b`), "destinationSet (choose destinations with each route's when)"},
	{regexp.MustCompile(`\bChannelUtil\b|\bAlertSender\b|\bContextFactory\b|\bServerEventContext\b`), "a Mirth server API"},
}

var javaUse = regexp.MustCompile(`\b(?:Packages\.)?(?:java|javax|org|com|net)\.[a-z][\w]*(?:\.[A-Za-z_][\w]*)+`)

var javaAllowed = map[string]bool{"java.lang.String": true, "java.lang.StringBuilder": true, "java.lang.Integer": true,
	"java.lang.Double": true, "java.lang.System": true, "java.util.UUID": true}

// problems are what in src cannot run here.
func problems(src string) []string {
	var out []string
	code := stripComments(src)
	for _, u := range unsupported {
		if u.re.MatchString(code) {
			out = append(out, u.why)
		}
	}
	for _, m := range javaUse.FindAllString(code, -1) {
		m = strings.TrimPrefix(m, "Packages.")
		ok := false
		for prefix := range javaAllowed {
			if m == prefix || strings.HasPrefix(m, prefix+".") {
				ok = true
			}
		}
		if !ok {
			out = append(out, "the Java class "+m)
		}
	}
	return dedupe(out)
}

var comments = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)

// stripComments drops comments, roughly (a // in a string goes too, which
// only hides a problem in that string's line from the scan).
func stripComments(src string) string { return comments.ReplaceAllString(src, "") }

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// trivial reports whether a channel script does nothing (Mirth's
// defaults: "return message;", "return;").
func trivial(src string) bool {
	s := strings.Join(strings.Fields(stripComments(src)), "")
	return s == "" || s == "returnmessage;" || s == "return;" || s == "returnmessage"
}

// encoderKind is what a destination transformer becomes.
const encoderKind = script.Encoder
