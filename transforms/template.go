package transforms

import (
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// template is ER7 text with {{PATH}} placeholders, each replaced by the
// raw bytes at PATH (empty when absent). The literal text is written as it
// would stand in the message: ^ separates components.
type template struct {
	text  string
	parts []part
}

type part struct {
	literal string
	path    hl7.Path
	isPath  bool
}

func (c *Compiler) template(key, text string) *template {
	t := &template{text: text}
	rest := text
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			c.add(key, "a {{ without its }}")
			return t
		}
		if i > 0 {
			t.parts = append(t.parts, part{literal: rest[:i]})
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		t.parts = append(t.parts, part{path: c.field(key, name, false), isPath: true})
		rest = rest[i+j+2:]
	}
	if rest != "" {
		t.parts = append(t.parts, part{literal: rest})
	}
	if strings.ContainsAny(text, "\r\n") {
		c.add(key, "a template must not contain a line break")
	}
	return t
}

// expand fills the placeholders from m.
func (t *template) expand(m *hl7.Message) []byte {
	var out []byte
	for _, p := range t.parts {
		if !p.isPath {
			out = append(out, p.literal...)
			continue
		}
		raw, _ := m.Raw(p.path)
		out = append(out, raw...)
	}
	return out
}
