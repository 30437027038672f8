package fhir

import (
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object, or array, that keeps its members in the order
// they were added, so a Bundle reads like the FHIR spec's examples and the
// same message always gives the same bytes. Setters drop empty values:
// FHIR JSON has no empty strings, objects or arrays, and a field the
// message leaves empty maps to nothing. Members are appended, not looked
// up: a key is set once (put replaces).
type obj struct {
	kvs    []kv
	arena  *objArena // where its arrays come from; nil: the heap
	array  bool      // members have no keys
	inline [4]kv     // most objects have a few members: one allocation for both
}

// kv is one member. Its value is a string (v nil), a JSON number or
// literal written as it stands (v is rawValue), or an object or array.
// Keeping strings out of an interface saves an allocation each.
type kv struct {
	k string
	s string
	v *obj
}

// num is a JSON number written as it stands (a FHIR decimal keeps its
// precision: "1.50" stays 1.50).
type num string

// rawValue marks a member whose s is written without quotes.
var rawValue = &obj{}

// objArena hands out objects from slabs: one allocation for many, and
// none at all once a pooled converter has grown its slabs (reset clears
// them for the next message).
type objArena struct {
	slabs     [][]obj
	cur, used int // slabs[cur][:used] are handed out

	kvSlabs       [][]kv // room for objects that outgrow their inline members
	kvCur, kvUsed int
}

const kvSlabSize = 512

// room is an empty slice with capacity n, from the kv slabs.
func (a *objArena) room(n int) []kv {
	if a.kvCur < len(a.kvSlabs) && a.kvUsed+n > kvSlabSize {
		a.kvCur, a.kvUsed = a.kvCur+1, 0
	}
	if a.kvCur == len(a.kvSlabs) {
		a.kvSlabs = append(a.kvSlabs, make([]kv, kvSlabSize))
	}
	r := a.kvSlabs[a.kvCur][a.kvUsed : a.kvUsed : a.kvUsed+n]
	a.kvUsed += n
	return r
}

const slabSize = 64

func (a *objArena) alloc() *obj {
	if a.cur == len(a.slabs) {
		a.slabs = append(a.slabs, make([]obj, slabSize))
	}
	o := &a.slabs[a.cur][a.used]
	if a.used++; a.used == slabSize {
		a.cur, a.used = a.cur+1, 0
	}
	o.arena = a
	return o
}

// reset clears what was handed out, for the next conversion.
func (a *objArena) reset() {
	for i := 0; i < a.cur && i < len(a.slabs); i++ {
		clear(a.slabs[i])
	}
	if a.cur < len(a.slabs) {
		clear(a.slabs[a.cur][:a.used])
	}
	a.cur, a.used = 0, 0
	for i := 0; i < a.kvCur && i < len(a.kvSlabs); i++ {
		clear(a.kvSlabs[i])
	}
	if a.kvCur < len(a.kvSlabs) {
		clear(a.kvSlabs[a.kvCur][:a.kvUsed])
	}
	a.kvCur, a.kvUsed = 0, 0
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

func (o *obj) push(m kv) {
	if o.kvs == nil {
		o.kvs = o.inline[:0]
	}
	if len(o.kvs) == cap(o.kvs) && o.arena != nil && cap(o.kvs) < kvSlabSize/4 {
		o.kvs = append(o.arena.room(2*cap(o.kvs)), o.kvs...)
	}
	o.kvs = append(o.kvs, m)
}

// str adds a string member; an empty string is dropped.
func (o *obj) str(key, s string) *obj {
	if s != "" {
		o.push(kv{k: key, s: s})
	}
	return o
}

// set adds a member of any supported type: string, num, bool, int,
// *obj, []*obj or []string.
func (o *obj) set(key string, v any) *obj {
	switch v := v.(type) {
	case string:
		return o.str(key, v)
	case num:
		if v != "" {
			o.push(kv{k: key, s: string(v), v: rawValue})
		}
	case bool:
		o.push(kv{k: key, s: strconv.FormatBool(v), v: rawValue})
	case int:
		o.push(kv{k: key, s: strconv.Itoa(v), v: rawValue})
	case *obj:
		if !v.empty() {
			o.push(kv{k: key, v: v})
		}
	case []*obj:
		for _, it := range v {
			o.add(key, it)
		}
	case []string:
		for _, s := range v {
			o.addString(key, s)
		}
	}
	return o
}

// put sets key, replacing a value it has.
func (o *obj) put(key string, v any) *obj {
	o.drop(key)
	return o.set(key, v)
}

// member finds key's member.
func (o *obj) member(key string) *kv {
	if o == nil {
		return nil
	}
	for i := range o.kvs {
		if o.kvs[i].k == key {
			return &o.kvs[i]
		}
	}
	return nil
}

// arrayAt is the array at key, made when missing.
func (o *obj) arrayAt(key string) *obj {
	if m := o.member(key); m != nil {
		return m.v
	}
	var l *obj
	if o.arena != nil {
		l = o.arena.alloc()
	} else {
		l = &obj{}
	}
	l.array = true
	o.push(kv{k: key, v: l})
	return l
}

// add appends v to the array at key.
func (o *obj) add(key string, v *obj) *obj {
	if !v.empty() {
		o.arrayAt(key).push(kv{v: v})
	}
	return o
}

// addString appends s to the string array at key.
func (o *obj) addString(key, s string) *obj {
	if s != "" {
		o.arrayAt(key).push(kv{s: s})
	}
	return o
}

// has reports whether key is set.
func (o *obj) has(key string) bool { return o.member(key) != nil }

// text is key's string value ("" when it has none).
func (o *obj) text(key string) string {
	if m := o.member(key); m != nil && m.v == nil {
		return m.s
	}
	return ""
}

// child is key's object or array (nil when it has none).
func (o *obj) child(key string) *obj {
	if m := o.member(key); m != nil && m.v != rawValue {
		return m.v
	}
	return nil
}

// item is an array's i-th object.
func (o *obj) item(i int) *obj {
	if o == nil || i >= len(o.kvs) {
		return nil
	}
	return o.kvs[i].v
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

func (o *obj) appendJSON(b []byte) []byte {
	open, end := byte('{'), byte('}')
	if o.array {
		open, end = '[', ']'
	}
	b = append(b, open)
	for i := range o.kvs {
		m := &o.kvs[i]
		if i > 0 {
			b = append(b, ',')
		}
		if !o.array { // keys are the converter's own names: nothing to escape
			b = append(b, '"')
			b = append(b, m.k...)
			b = append(b, '"', ':')
		}
		switch m.v {
		case nil:
			b = appendString(b, m.s)
		case rawValue:
			b = append(b, m.s...)
		default:
			b = m.v.appendJSON(b)
		}
	}
	return append(b, end)
}

const hexDigits = "0123456789abcdef"

// plain8 reports whether none of 8 bytes needs escaping: no control
// character, quote, backslash or non-ASCII byte.
func plain8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	u := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	zero := func(x uint64) uint64 { return (x - ones) & ^x & highs } // a high bit where x has a zero byte
	return (u&highs)|((u-0x20*ones)&^u&highs)|zero(u^('"'*ones))|zero(u^('\\'*ones)) == 0
}

// plain marks the bytes a JSON string holds as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string. Bytes that are not UTF-8 become
// U+FFFD: FHIR JSON is UTF-8, and the converter decodes the message's
// charset before this.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(s[i:i+8]) { // eight bytes at a time while nothing needs escaping
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if plain[c] {
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
