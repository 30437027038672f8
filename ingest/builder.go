package ingest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hl7broker/hl7broker/script"
)

// Builder turns documents a source receives (JSON or XML: a source's
// format) into HL7 v2 messages with the source's script, which is given
// each document as msg and returns the message's text. What it builds is
// then received as any message is: checked, validated, stored and
// acknowledged.
type Builder struct {
	Format string // json or xml
	Script *script.Script
}

// Built is one document's message, or why there is none (the script's
// name, line and reason, or the document's place: never a value).
type Built struct {
	Raw []byte
	Err error
}

// Build splits data into documents (a JSON array is one document per
// element; anything else is one document) and builds each. The error is
// for data that is not a document at all.
func (b *Builder) Build(data []byte) ([]Built, error) {
	var docs []any
	switch b.Format {
	case "json":
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %s", jsonReason(err))
		}
		if dec.More() {
			return nil, errors.New("not JSON: more than one value (send an array of documents)")
		}
		if arr, ok := v.([]any); ok {
			docs = arr
		} else {
			docs = []any{v}
		}
		for i := range docs {
			docs[i] = numbers(docs[i])
		}
	case "xml":
		v, err := xmlTree(data)
		if err != nil {
			return nil, fmt.Errorf("not XML: %v", err)
		}
		docs = []any{v}
	default:
		return nil, fmt.Errorf("format %q is not json or xml", b.Format)
	}
	out := make([]Built, len(docs))
	for i, d := range docs {
		out[i] = b.One(d)
	}
	return out, nil
}

// One builds the message of one document (a row of a database source).
func (b *Builder) One(doc any) Built {
	res, err := b.Script.Run(&script.Input{Document: doc})
	if err != nil {
		return Built{Err: err}
	}
	return Built{Raw: normalizeTerminators(res.Payload)}
}

// jsonReason is why JSON did not decode, with its place and no value.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too soon"
	}
	return "it does not decode"
}

// numbers turns json.Number into float64 for a script (an integer stays
// whole), deep.
func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case []any:
		for i := range t {
			t[i] = numbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = numbers(t[k])
		}
	}
	return v
}

// normalizeTerminators ends a built message's segments with CR, as HL7
// wants, whatever the script wrote (\n, \r\n).
func normalizeTerminators(b []byte) []byte {
	s := strings.ReplaceAll(string(b), "\r\n", "\r")
	s = strings.ReplaceAll(s, "\n", "\r")
	s = strings.TrimRight(s, "\r") + "\r"
	return []byte(s)
}

// xmlTree is an XML document as a tree a script reads like JSON: an
// element is an object of its children by name (an array when a name
// repeats), its attributes as "@name" and its text as "#text"; an element
// with only text is that text. The root element is the document.
func xmlTree(data []byte) (any, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	type frame struct {
		obj  map[string]any
		text strings.Builder
		name string
	}
	var stack []*frame
	var root any
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("syntax error on line %d", se.Line)
			}
			return nil, errors.New("it does not parse")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			f := &frame{obj: map[string]any{}, name: t.Name.Local}
			for _, a := range t.Attr {
				f.obj["@"+a.Name.Local] = a.Value
			}
			stack = append(stack, f)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			var v any = f.obj
			text := strings.TrimSpace(f.text.String())
			if len(f.obj) == 0 {
				v = text
			} else if text != "" {
				f.obj["#text"] = text
			}
			if len(stack) == 0 {
				root = v
				continue
			}
			parent := stack[len(stack)-1].obj
			switch prev := parent[f.name].(type) {
			case nil:
				parent[f.name] = v
			case []any:
				parent[f.name] = append(prev, v)
			default:
				parent[f.name] = []any{prev, v}
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}
