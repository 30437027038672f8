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
	keys []string
	vals []any // string, num, bool, int, *obj, []*obj, []string
}

// num is a JSON number written as it stands (a FHIR decimal keeps its
// precision: "1.50" stays 1.50).
type num string

func newObj(kv ...any) *obj {
	o := &obj{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *obj) set(key string, v any) *obj {
	if isEmpty(v) {
		return o
	}
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = v
			return o
		}
	}
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
	return o
}

// add appends v to the array at key.
func (o *obj) add(key string, v *obj) *obj {
	if v.empty() {
		return o
	}
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = append(o.vals[i].([]*obj), v)
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
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = append(o.vals[i].([]string), s)
			return o
		}
	}
	return o.set(key, []string{s})
}

func (o *obj) get(key string) any {
	if o == nil {
		return nil
	}
	for i, k := range o.keys {
		if k == key {
			return o.vals[i]
		}
	}
	return nil
}

func (o *obj) empty() bool { return o == nil || len(o.keys) == 0 }

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
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, o.vals[i])
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
