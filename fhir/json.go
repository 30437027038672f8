package fhir

import (
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object that keeps its keys in the order they were set, so
// a Bundle reads like the FHIR spec's examples and the same message always
// gives the same bytes. set drops empty values: FHIR JSON has no empty
// strings, objects or arrays, and a field the message leaves empty maps to
// nothing.
type obj struct {
	kvs    []kv
	inline [4]kv // most objects have a few keys: one allocation for both
}

type kv struct {
	k string
	s string // a string value, kept out of v: boxing it would allocate
	v any    // num, bool, int, *obj, []*obj, []string; nil for a string
}

// num is a JSON number written as it stands (a FHIR decimal keeps its
// precision: "1.50" stays 1.50).
type num string

// objArena hands out objects from slabs: one allocation for many.
type objArena struct{ slab []obj }

func (a *objArena) alloc() *obj {
	if len(a.slab) == 0 {
		a.slab = make([]obj, 32)
	}
	o := &a.slab[0]
	a.slab = a.slab[1:]
	return o
}

func (a *objArena) newObj(kv ...any) *obj {
	o := a.alloc()
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (a *objArena) strObj(kv ...string) *obj {
	o := a.alloc()
	for i := 0; i+1 < len(kv); i += 2 {
		o.str(kv[i], kv[i+1])
	}
	return o
}

func newObj(kv ...any) *obj {
	o := &obj{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

// str sets a string value; an empty one is dropped.
func (o *obj) str(key, s string) *obj {
	if s == "" {
		return o
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			o.kvs[i].s, o.kvs[i].v = s, nil
			return o
		}
	}
	if o.kvs == nil {
		o.kvs = o.inline[:0]
	}
	o.kvs = append(o.kvs, kv{k: key, s: s})
	return o
}

// strObj is newObj for string values only.
func strObj(kv ...string) *obj {
	o := &obj{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.str(kv[i], kv[i+1])
	}
	return o
}

func (o *obj) set(key string, v any) *obj {
	if s, ok := v.(string); ok {
		return o.str(key, s)
	}
	if isEmpty(v) {
		return o
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			o.kvs[i].v = v
			return o
		}
	}
	if o.kvs == nil {
		o.kvs = o.inline[:0]
	}
	o.kvs = append(o.kvs, kv{k: key, v: v})
	return o
}

// add appends v to the array at key.
func (o *obj) add(key string, v *obj) *obj {
	if v.empty() {
		return o
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			o.kvs[i].v = append(o.kvs[i].v.([]*obj), v)
			return o
		}
	}
	return o.set(key, []*obj{v})
}

// addString appends s to the string array at key.
func (o *obj) addString(key, s string) *obj {
	if s == "" {
		return o
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			o.kvs[i].v = append(o.kvs[i].v.([]string), s)
			return o
		}
	}
	return o.set(key, []string{s})
}

func (o *obj) get(key string) any {
	if o == nil {
		return nil
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			if o.kvs[i].v == nil {
				return o.kvs[i].s
			}
			return o.kvs[i].v
		}
	}
	return nil
}

func (o *obj) empty() bool { return o == nil || len(o.kvs) == 0 }

// drop removes key.
func (o *obj) drop(key string) {
	for i := range o.kvs {
		if o.kvs[i].k == key {
			o.kvs = append(o.kvs[:i], o.kvs[i+1:]...)
			return
		}
	}
}

// moveTo moves key to position at, keeping FHIR's usual element order
// (id after resourceType).
func (o *obj) moveTo(key string, at int) {
	for i := range o.kvs {
		if o.kvs[i].k == key && i > at {
			e := o.kvs[i]
			copy(o.kvs[at+1:i+1], o.kvs[at:i])
			o.kvs[at] = e
			return
		}
	}
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case num:
		return v == ""
	case *obj:
		return v.empty()
	case []*obj:
		return len(v) == 0
	case []string:
		return len(v) == 0
	}
	return false
}

func (o *obj) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i := range o.kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, o.kvs[i].k)
		b = append(b, ':')
		if o.kvs[i].v == nil {
			b = appendString(b, o.kvs[i].s)
		} else {
			b = appendValue(b, o.kvs[i].v)
		}
	}
	return append(b, '}')
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case num:
		return append(b, v...)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case *obj:
		return v.appendJSON(b)
	case []*obj:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendJSON(b)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Bytes that are not UTF-8 become
// U+FFFD: FHIR JSON is UTF-8, and the converter decodes the message's
// charset before this.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
