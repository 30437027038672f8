package mirth

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// node is one element of an export, read generically: exports hold
// elements named after Java classes (com.mirth.connect.plugins.mapper.MapperStep),
// which a fixed schema would not know.
type node struct {
	name  string
	attrs map[string]string
	text  string
	kids  []*node
}

// maxDepth bounds nesting, so that a hostile file cannot exhaust the stack.
const maxDepth = 256

// parse reads an XML document into nodes.
func parse(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	root := &node{}
	stack := []*node{root}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not well-formed XML: %w", err)
		}
		cur := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > maxDepth {
				return nil, errors.New("elements nested too deep")
			}
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				if n.attrs == nil {
					n.attrs = map[string]string{}
				}
				n.attrs[a.Name.Local] = a.Value
			}
			cur.kids = append(cur.kids, n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			cur.text += string(t)
		}
	}
	if len(root.kids) != 1 {
		return nil, errors.New("not an XML document with one root element")
	}
	return root.kids[0], nil
}

// child is the first child element named name (nil if none; nil-safe).
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// path follows child names: n.path("properties", "host").
func (n *node) path(names ...string) *node {
	for _, name := range names {
		n = n.child(name)
	}
	return n
}

// str is the text of the child at names, trimmed ("" when absent); a
// base64-encoded element (templates in Mirth 3.x) is decoded.
func (n *node) str(names ...string) string {
	c := n.path(names...)
	if c == nil {
		return ""
	}
	if c.attrs["encoding"] == "base64" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.text))
		if err == nil {
			return string(b)
		}
	}
	return strings.TrimSpace(c.text)
}

// raw is the text of the child at names as written (scripts keep their
// indentation).
func (n *node) raw(names ...string) string {
	c := n.path(names...)
	if c == nil {
		return ""
	}
	return c.text
}

func (n *node) flag(names ...string) bool { return n.str(names...) == "true" }

// children are n's child elements (nil-safe).
func (n *node) children() []*node {
	if n == nil {
		return nil
	}
	return n.kids
}
