package hl7

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// EncodeJSON writes m as JSON in the mapping docs/routing.md documents:
//
//	{"segments": [{"id": "PID", "PID.3": [{"PID.3.1": "MRN1", "PID.3.4": "HOSP"}], ...}, ...]}
//
// Segments keep their order. A field is an array of its repetitions (an
// empty repetition is {}); a repetition is an object of its non-empty
// components keyed SEG.FIELD.COMPONENT; a component is a string, or an
// object keyed SEG.FIELD.COMPONENT.SUB when it has subcomponents. Values
// are decoded (escape sequences resolved); empty fields are left out.
// MSH-1 and MSH-2 are the delimiters as written.
func EncodeJSON(m *Message) ([]byte, error) { return EncodeJSONNamed(m, nil) }

// Namer names the place a JSON key stands for (segment id, and field,
// component and subcomponent numbers, 0 when absent), "" when it has no
// name: hl7/spec names them from the message's version.
type Namer func(segment string, field, component, sub int) string

// EncodeJSONNamed is EncodeJSON with, when name is not nil, a "names"
// object after "segments": each key the segments use (PID, PID.5,
// PID.5.1), in the order first used, with its name ("Patient Name",
// "Family Name"); keys without a name are left out.
func EncodeJSONNamed(m *Message, name Namer) ([]byte, error) {
	type object = []keyValue
	var segments []object
	d := m.delims
	for seg := range m.Segments() {
		id := seg.Name()
		obj := object{{"id", id}}
		for n := 1; n <= seg.FieldCount(); n++ {
			raw, ok := seg.Field(n)
			if !ok || len(raw) == 0 {
				continue
			}
			key := id + "." + strconv.Itoa(n)
			if isHeaderName([]byte(id)) && n <= 2 {
				obj = append(obj, keyValue{key, []object{{{key + ".1", string(raw)}}}})
				continue
			}
			var reps []object
			for _, rep := range bytes.Split(raw, []byte{d.Repetition}) {
				reps = append(reps, components(d, key, rep))
			}
			obj = append(obj, keyValue{key, reps})
		}
		segments = append(segments, obj)
	}
	doc := []keyValue{{"segments", segments}}
	if name != nil {
		doc = append(doc, keyValue{"names", names(segments, name)})
	}
	return marshalObject(doc)
}

// names are the names of the keys segments use, each once.
func names(segments [][]keyValue, name Namer) []keyValue {
	out := []keyValue{}
	seen := map[string]bool{}
	add := func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		parts := strings.Split(key, ".")
		var n [3]int
		for i := 1; i < len(parts) && i <= 3; i++ {
			n[i-1], _ = strconv.Atoi(parts[i])
		}
		if v := name(parts[0], n[0], n[1], n[2]); v != "" {
			out = append(out, keyValue{key, v})
		}
	}
	var walk func(o []keyValue)
	walk = func(o []keyValue) {
		for _, kv := range o {
			if kv.key == "id" {
				if id, ok := kv.value.(string); ok {
					add(id)
				}
				continue
			}
			add(kv.key)
			switch v := kv.value.(type) {
			case []keyValue:
				walk(v)
			case [][]keyValue:
				for _, item := range v {
					walk(item)
				}
			}
		}
	}
	for _, seg := range segments {
		walk(seg)
	}
	return out
}

// components is one repetition as an object of its non-empty components.
func components(d Delimiters, key string, rep []byte) []keyValue {
	out := []keyValue{}
	for c, comp := range bytes.Split(rep, []byte{d.Component}) {
		if len(comp) == 0 {
			continue
		}
		ckey := key + "." + strconv.Itoa(c+1)
		subs := bytes.Split(comp, []byte{d.Subcomponent})
		if len(subs) == 1 {
			out = append(out, keyValue{ckey, string(d.Unescape(comp))})
			continue
		}
		sub := []keyValue{}
		for s, v := range subs {
			if len(v) > 0 {
				sub = append(sub, keyValue{ckey + "." + strconv.Itoa(s+1), string(d.Unescape(v))})
			}
		}
		out = append(out, keyValue{ckey, sub})
	}
	return out
}

// keyValue is one member of a JSON object: value is a string, an object
// ([]keyValue) or a list of objects ([][]keyValue). Members keep their order.
type keyValue struct {
	key   string
	value any
}

func marshalObject(o []keyValue) ([]byte, error) {
	var b bytes.Buffer
	writeObject(&b, o)
	return b.Bytes(), nil
}

func writeObject(b *bytes.Buffer, o []keyValue) {
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, kv.key)
		b.WriteByte(':')
		switch v := kv.value.(type) {
		case string:
			writeString(b, v)
		case []keyValue:
			writeObject(b, v)
		case [][]keyValue:
			b.WriteByte('[')
			for j, item := range v {
				if j > 0 {
					b.WriteByte(',')
				}
				writeObject(b, item)
			}
			b.WriteByte(']')
		}
	}
	b.WriteByte('}')
}

// writeString writes s as a JSON string without HTML escaping: & < >
// stay as they are, readable.
func writeString(b *bytes.Buffer, s string) {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}
