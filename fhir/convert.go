package fhir

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

// Options change how a message converts. The zero value converts to a
// transaction Bundle, reads times without a zone in the local zone, and
// decodes text by MSH-18.
type Options struct {
	// Bundle is "transaction" (the default: each entry a PUT, so a resend
	// updates what the first one created) or "collection" (no requests).
	Bundle string
	// TimeZone reads HL7 times that carry no offset; nil is time.Local.
	TimeZone *time.Location
	// Charset decodes the message's text when MSH-18 does not say (or says
	// wrong); "" uses MSH-18, and bytes as they are when it is empty.
	Charset string
}

// NewOptions checks options given as text (a command line's): bundle
// "transaction" or "collection", an IANA time zone name ("" this
// machine's), a charset name ("" MSH-18's).
func NewOptions(bundle, timeZone, charset string) (Options, error) {
	o := Options{Bundle: bundle, Charset: charset}
	if bundle != "transaction" && bundle != "collection" {
		return o, fmt.Errorf("bundle %q: transaction or collection", bundle)
	}
	if timeZone != "" {
		loc, err := time.LoadLocation(timeZone)
		if err != nil {
			return o, fmt.Errorf("time zone %q: %v", timeZone, err)
		}
		o.TimeZone = loc
	}
	if charset != "" {
		if _, err := hl7.LookupCharset(charset); err != nil {
			return o, fmt.Errorf("charset: %v", err)
		}
	}
	return o, nil
}

// Supported message codes (MSH-9.1) and what each converts by. A message
// of another code is refused with an UnsupportedError: no mapping is better
// than an invented one.
var supported = map[string]bool{"ADT": true, "ORU": true, "VXU": true, "ORM": true, "OML": true, "MDM": true, "SIU": true}

// UnsupportedError says a message's type has no FHIR mapping here.
type UnsupportedError struct{ Type string }

func (e *UnsupportedError) Error() string {
	if e.Type == "" {
		return "fhir: the message has no type in MSH-9"
	}
	return fmt.Sprintf("fhir: no FHIR mapping for message type %s (ADT, ORU, VXU, ORM, OML, MDM and SIU convert)", e.Type)
}

// Convert maps one HL7 v2 message to a FHIR R4 Bundle in JSON. The same
// message (same MSH-3, MSH-4 and MSH-10) always gives the same resource ids.
func Convert(m *hl7.Message, o Options) ([]byte, error) {
	c, err := newConv(m, o)
	if err != nil {
		return nil, err
	}
	defer c.release()
	c.walk()
	return c.bundle().appendJSON(make([]byte, 0, 8*len(m.Bytes())+2048)), nil
}

// convPool keeps converters with their slabs between messages: a
// conversion's objects are garbage as soon as its JSON is written, and
// reusing their memory spares the collector most of its work.
var convPool = sync.Pool{New: func() any { return &conv{byID: map[string]*entry{}} }}

// release clears c (nothing of the message stays behind) and pools it.
func (c *conv) release() {
	c.objArena.reset()
	clear(c.byID)
	clear(c.entries)
	byID, entries, arena, idTypes := c.byID, c.entries[:0], c.objArena, c.idTypes[:0]
	clear(c.idTypes[:cap(c.idTypes)])
	*c = conv{byID: byID, entries: entries, objArena: arena, idTypes: idTypes}
	convPool.Put(c)
}

// ConvertBytes parses data and converts it.
func ConvertBytes(data []byte, o Options) ([]byte, error) {
	m, err := hl7.Parse(data)
	if err != nil {
		return nil, err
	}
	return Convert(m, o)
}

type conv struct {
	texter
	objArena
	m          *hl7.Message
	collection bool
	loc        *time.Location
	seed       []byte
	code       string // MSH-9.1
	event      string // MSH-9.2, or EVN-1
	entries    []*entry
	byID       map[string]*entry

	patient   *entry // from PID
	encounter *entry // from PV1
	sender    *entry // Organization from MSH-4
	idTypes   []idType

	sender3and4 string // MSH-3|MSH-4: the scope of names with no identifier
}

// entry is one resource of the Bundle with how it is written.
type entry struct {
	typ  string
	id   string
	res  *obj
	cond string // conditional update query ("identifier=s|v"); "" to PUT by id
	r    *obj   // its reference, made once and shared: objects are never changed once set
}

func (e *entry) ref() *obj { return e.r }

func newConv(m *hl7.Message, o Options) (*conv, error) {
	msh, ok := firstSegment(m, "MSH")
	if !ok {
		return nil, &UnsupportedError{}
	}
	d := m.Delimiters()
	c := convPool.Get().(*conv)
	c.m, c.loc, c.collection = m, o.TimeZone, o.Bundle == "collection"
	c.texter = texter{d: d}
	if cs, err := m.ResolveCharset(o.Charset, true); err == nil {
		c.charset = cs
		switch strings.ToUpper(cs.Name) {
		case "", "ASCII", "UNICODE UTF-8", "UTF-8":
		default:
			c.decode = true
		}
	}
	if c.loc == nil {
		c.loc = time.Local
	}
	typ, _ := msh.Field(9)
	c.code, c.event = c.compText(typ, 1), c.compText(typ, 2)
	if !supported[c.code] {
		t := strings.Clone(c.code) // it leaves Convert: not a view of the message
		if c.event != "" {
			t += "^" + c.event
		}
		c.release()
		return nil, &UnsupportedError{Type: t}
	}
	// Ids derive from who sent the message and its control ID, so a resend
	// gets the same ones; without a control ID, from the bytes.
	f3, _ := msh.Field(3)
	f4, _ := msh.Field(4)
	f10, _ := msh.Field(10)
	c.sender3and4 = c.text(f3) + "|" + c.text(f4)
	if c.text(f10) != "" {
		c.seed = []byte(c.text(f3) + "|" + c.text(f4) + "|" + c.text(f10))
	} else {
		sum := sha1.Sum(m.Bytes())
		c.seed = sum[:]
	}
	return c, nil
}

func firstSegment(m *hl7.Message, name string) (hl7.Segment, bool) {
	for s := range m.SegmentsNamed(name) {
		return s, true
	}
	return hl7.Segment{}, false
}

// newID is a name-based UUID (as newRef's tail).
func newID(parts ...string) string { return newRef(parts...)[len("urn:uuid:"):] }

// newRef is urn:uuid: and a name-based UUID (RFC 9562 version 5 layout) of parts.
func newRef(parts ...string) string {
	var buf [256]byte
	in := buf[:0]
	for _, p := range parts {
		in = append(append(in, p...), 0)
	}
	sum := sha1.Sum(in)
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	var out [45]byte
	b := append(out[:0], "urn:uuid:"...) // one string for the reference; the id is its tail
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexd[sum[i]>>4], hexd[sum[i]&0xf])
	}
	return string(b)
}

// resource adds a resource made from this message: its id derives from the
// message and key (the segment and its place).
func (c *conv) resource(typ, key string) *entry {
	return c.addEntry(typ, newRef(string(c.seed), typ, key))
}

// shared adds, or finds, a resource that stands for something outside the
// message (a practitioner, an organization, a location): its id derives
// from what identifies it, so every message that names it names the same
// resource, and the Bundle holds it once.
func (c *conv) shared(typ string, identity ...string) (e *entry, isNew bool) {
	ref := newRef(append([]string{typ}, identity...)...)
	if e, ok := c.byID[ref[len("urn:uuid:"):]]; ok {
		return e, false
	}
	return c.addEntry(typ, ref), true
}

// addEntry adds a resource whose reference is ref (urn:uuid:<id>).
func (c *conv) addEntry(typ, ref string) *entry {
	id := ref[len("urn:uuid:"):]
	res := c.alloc()
	res.kvs = c.room(24) // a resource has many members: room for them at once
	e := &entry{typ: typ, id: id, res: res.str("resourceType", typ), r: c.strObj("reference", ref)}
	if c.collection {
		e.res.str("id", id)
	}
	c.entries = append(c.entries, e)
	c.byID[id] = e
	return e
}

// conditional makes e a conditional update on its identifier (system and
// value both needed), as the IG asks for resources that live beyond one
// message: a resend, or the next message about the same patient, updates
// the resource instead of adding another.
func (c *conv) conditional(e *entry, ident *obj) {
	if ident == nil || c.collection {
		return
	}
	system := ident.text("system")
	value := ident.text("value")
	if system == "" || value == "" {
		return
	}
	e.cond = "identifier=" + url.QueryEscape(system) + "|" + url.QueryEscape(value)
}

func (c *conv) bundle() *obj {
	b := c.strObj("resourceType", "Bundle")
	msh, _ := firstSegment(c.m, "MSH")
	f10, _ := msh.Field(10)
	f7, _ := msh.Field(7)
	if ctl := c.text(f10); ctl != "" {
		f3, _ := msh.Field(3)
		b.set("identifier", c.newObj("system", c.hdSystem(f3), "value", ctl))
	}
	if c.collection {
		b.str("type", "collection")
	} else {
		b.str("type", "transaction")
	}
	b.str("timestamp", c.instant(f7))
	entries := make([]*obj, 0, len(c.entries))
	for _, e := range c.entries {
		be := c.strObj("fullUrl", e.r.kvs[0].s) // the reference's urn:uuid
		be.set("resource", e.res)
		if !c.collection {
			req := c.strObj("method", "PUT")
			if e.cond != "" {
				req.str("url", e.typ+"?"+e.cond)
			} else {
				e.res.str("id", e.id)
				e.res.moveTo("id", 1)
				req.str("url", e.typ+"/"+e.id)
			}
			be.set("request", req)
		}
		entries = append(entries, be)
	}
	b.set("entry", entries)
	return b
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
