package fhir

import (
	"encoding/base64"
	"net/url"
	"strings"
	"time"
)

// Data type maps: each takes one repetition's raw bytes and returns the
// FHIR type's object, or nil when nothing in it maps.

func (c *conv) comp(raw []byte, n int) []byte { return piece(raw, c.d.Component, n) }
func (c *conv) sub(raw []byte, n int) []byte  { return piece(raw, c.d.Subcomponent, n) }
func (c *conv) compText(raw []byte, n int) string {
	return c.text(c.sub(c.comp(raw, n), 1))
}

// reps calls f with each non-empty repetition of a field: one that holds
// more than separators, spaces and HL7's explicit null ("").
func (c *conv) reps(raw []byte, f func([]byte)) {
	split(raw, c.d.Repetition, func(r []byte) {
		if len(r) == 2 && r[0] == '"' && r[1] == '"' {
			return
		}
		for _, b := range r {
			if b != c.d.Component && b != c.d.Subcomponent && b != ' ' {
				f(r)
				return
			}
		}
	})
}

// codeableConcept maps CWE, CE and CNE (CWE[CodeableConcept]): the first
// and alternate triplets become codings, CWE-9 the text; a triplet with
// text and no code gives the text alone.
func (c *conv) codeableConcept(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	cc := c.alloc()
	for _, at := range [2]int{1, 4} {
		code, display, system := c.partText(&cs, at), c.partText(&cs, at+1), c.partText(&cs, at+2)
		if code == "" {
			if display != "" && !cc.has("text") {
				cc.str("text", display)
			}
			continue
		}
		version := c.partText(&cs, 7)
		if at == 4 {
			version = c.partText(&cs, 8)
		}
		cc.add("coding", c.strObj("system", systemURI(system), "version", version, "code", code, "display", display))
	}
	if t := c.partText(&cs, 9); t != "" {
		cc.put("text", t)
	}
	return cc
}

// coding maps the first triplet of a CWE to a Coding, the system given
// when the message leaves it out (an HL7 table field, say).
func (c *conv) coding(raw []byte, defaultSystem string) *obj {
	cs := splitParts(raw, c.d.Component)
	code := c.partText(&cs, 1)
	if code == "" {
		return nil
	}
	system := systemURI(c.partText(&cs, 3))
	if system == "" {
		system = defaultSystem
	}
	return c.strObj("system", system, "code", code, "display", c.partText(&cs, 2))
}

// tableConcept maps a coded field of HL7 table n (ID, IS, or CWE whose
// code is the table's) to a CodeableConcept in the table's code system.
func (c *conv) tableConcept(raw []byte, table string) *obj {
	cc := c.codeableConcept(raw)
	if first := cc.child("coding").item(0); first != nil && c.compText(raw, 3) == "" {
		first.put("system", v2Table(table))
		first.moveTo("system", 0)
	}
	return cc
}

// identifier maps CX (CX[Identifier]): CX-1 value, CX-4 system (from the
// assigning authority) and assigner, CX-5 type (table 0203), CX-7/8 period.
func (c *conv) identifier(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	value := c.partText(&cs, 1)
	if value == "" {
		return nil
	}
	hd := cs.at(4)
	id := &obj{}
	id.set("type", c.identifierType(c.partText(&cs, 5)))
	id.str("system", c.hdSystem(hd)).str("value", value)
	id.set("period", c.period(cs.at(7), cs.at(8)))
	if a := c.text(c.sub(hd, 1)); a != "" {
		id.set("assigner", c.strObj("display", a))
	}
	return id
}

func (c *conv) identifierType(code string) *obj {
	if code == "" {
		return nil
	}
	for _, t := range c.idTypes { // a few codes, used again and again: made once (never changed once made)
		if t.code == code {
			return t.o
		}
	}
	o := c.newObj("coding", []*obj{c.strObj("system", v2Table0203, "code", code)})
	c.idTypes = append(c.idTypes, idType{code, o})
	return o
}

const v2Table0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

type idType struct {
	code string
	o    *obj
}

// hdSystem is the identifier system an HD names: its universal ID as a URI
// (an ISO OID as urn:oid:, a UUID as urn:uuid:, a URI as it is), else its
// namespace ID as urn:id:<namespace>.
func (c *conv) hdSystem(hd []byte) string {
	return idSystem(c.text(c.sub(hd, 1)), c.text(c.sub(hd, 2)), c.text(c.sub(hd, 3)))
}

// idSystem is the identifier system of an assigning authority's
// namespace ID, universal ID and its type (HD, and EI-2..4).
func idSystem(ns, uid, typ string) string {
	typ = strings.ToUpper(typ)
	switch {
	case uid != "" && typ == "ISO":
		return "urn:oid:" + uid
	case uid != "" && typ == "UUID":
		return "urn:uuid:" + strings.ToLower(uid)
	case uid != "" && (typ == "URI" || typ == "URL"):
		return uid
	case uid != "" && isOID(uid):
		return "urn:oid:" + uid
	case ns != "":
		return systemURIForNamespace(ns)
	}
	return ""
}

func systemURIForNamespace(ns string) string {
	if strings.Contains(ns, ":") && !strings.ContainsAny(ns, " \t") {
		return ns
	}
	return "urn:id:" + url.PathEscape(ns)
}

func isOID(s string) bool {
	if len(s) < 3 || !strings.Contains(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// humanName maps XPN (XPN[HumanName]): family (FN-1), given names (2, 3),
// suffix (4) and degree (6), prefix (5), use from the name type (7, table
// 0200), period (10, or 12 and 13).
func (c *conv) humanName(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	n := c.strObj("use", nameUseMap[c.partText(&cs, 7)], "family", c.partText(&cs, 1))
	for _, at := range []int{2, 3} {
		n.addString("given", c.partText(&cs, at)) // as written: "Mary Ann" is one given name
	}
	n.addString("prefix", c.partText(&cs, 5))
	n.addString("suffix", c.partText(&cs, 4))
	n.addString("suffix", c.partText(&cs, 6))
	if p := c.periodDR(cs.at(10)); p != nil {
		n.set("period", p)
	} else {
		n.set("period", c.period(cs.at(12), cs.at(13)))
	}
	if len(n.kvs) == 1 && n.kvs[0].k == "use" {
		return nil
	}
	return n
}

// address maps XAD (XAD[Address]): lines (1.1, 2), city (3), state (4),
// postal code (5), country (6), use and type (7, table 0190), district (9),
// period (12, 13).
func (c *conv) address(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	typ := c.partText(&cs, 7)
	a := c.strObj("use", addressUseMap[typ], "type", addressTypeMap[typ])
	a.addString("line", c.partText(&cs, 1))
	a.addString("line", c.partText(&cs, 2))
	a.str("city", c.partText(&cs, 3)).str("district", c.partText(&cs, 9)).str("state", c.partText(&cs, 4)).
		set("postalCode", c.partText(&cs, 5)).str("country", c.partText(&cs, 6)).
		set("period", c.period(cs.at(12), cs.at(13)))
	if !a.has("line") && !a.has("city") && !a.has("state") && !a.has("postalCode") && !a.has("country") && !a.has("district") {
		return nil
	}
	return a
}

// contactPoint maps XTN (XTN[ContactPoint]): system from the equipment
// type (3, table 0202) or e-mail (4), use from the use code (2, table
// 0201) else the field's own use, value from the e-mail, the unformatted
// number (12), the parts (5-8) or XTN-1.
func (c *conv) contactPoint(raw []byte, fieldUse string) *obj {
	cs := splitParts(raw, c.d.Component)
	useCode, equip := c.partText(&cs, 2), c.partText(&cs, 3)
	email := c.partText(&cs, 4)
	var value string
	switch {
	case email != "" && (useCode == "NET" || equip == "Internet" || equip == "X.400" || strings.Contains(email, "@")):
		value = email
		equip = "Internet"
	case c.partText(&cs, 12) != "":
		value = c.partText(&cs, 12)
	case c.partText(&cs, 7) != "":
		var b strings.Builder
		if cc := c.partText(&cs, 5); cc != "" {
			b.WriteString("+" + strings.TrimPrefix(cc, "+") + " ")
		}
		if area := c.partText(&cs, 6); area != "" {
			b.WriteString("(" + area + ") ")
		}
		b.WriteString(c.partText(&cs, 7))
		if ext := c.partText(&cs, 8); ext != "" {
			b.WriteString(" ext. " + ext)
		}
		value = b.String()
	default:
		value = c.partText(&cs, 1)
	}
	if value == "" {
		return nil
	}
	system := telecomSystemMap[equip]
	if system == "" && useCode == "BPN" {
		system = "pager"
	}
	if system == "" && useCode != "NET" {
		system = "phone"
	}
	if system == "" {
		system = "email"
	}
	use := telecomUseMap[useCode]
	if equip == "CP" || useCode == "PRS" {
		use = "mobile"
	}
	if use == "" {
		use = fieldUse
	}
	return c.strObj("system", system, "value", value, "use", use)
}

// period maps a start and an end DTM to a Period.
func (c *conv) period(start, end []byte) *obj {
	return c.strObj("start", c.dateTime(start), "end", c.dateTime(end))
}

// periodDR maps a DR (start^end) to a Period.
func (c *conv) periodDR(raw []byte) *obj {
	return c.period(c.sub(raw, 1), c.sub(raw, 2))
}

// hl7Time is an HL7 DTM split into its parts, with its precision: 1 year,
// 2 month, 3 day, 4 hour, 5 minute, 6 second.
type hl7Time struct {
	y, mo, d, h, mi, s int
	frac               string // digits after the point
	precision          int
	zone               string // "+hh:mm", "" when the value has none
}

// parseDTM reads YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]; ok is false for
// anything else, including impossible dates.
func parseDTM(s string) (t hl7Time, ok bool) {
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		z := s[i+1:]
		if len(z) != 4 || !allDigits(z) || z[:2] > "14" || z[2:] > "59" {
			return t, false
		}
		t.zone = s[i:i+1] + z[:2] + ":" + z[2:]
		s = s[:i]
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		t.frac = s[i+1:]
		s = s[:i]
		if !allDigits(t.frac) || len(s) != 14 {
			return t, false
		}
		if len(t.frac) > 9 {
			t.frac = t.frac[:9]
		}
	}
	if !allDigits(s) || len(s) < 4 || len(s)%2 != 0 || len(s) > 14 {
		return t, false
	}
	t.precision = 1 + (len(s)-4)/2
	parts := []*int{&t.y, &t.mo, &t.d, &t.h, &t.mi, &t.s}
	*parts[0] = atoi(s[:4])
	for i := 1; i < t.precision; i++ {
		*parts[i] = atoi(s[2+2*i : 4+2*i])
	}
	if t.precision < 2 {
		t.mo = 1
	}
	if t.precision < 3 {
		t.d = 1
	}
	if t.y == 0 || t.mo < 1 || t.mo > 12 || t.d < 1 || t.d > daysIn(t.y, t.mo) || t.h > 23 || t.mi > 59 || t.s > 59 {
		return t, false
	}
	return t, true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func daysIn(y, m int) int { return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// dateTime maps TS/DTM to a FHIR dateTime at the precision the message
// gives: 2026, 2026-01, 2026-01-14, or a time with its zone. A time FHIR
// cannot carry (hours, or minutes, without seconds) gets zero seconds; a
// time without a zone is read in the converter's time zone. "" when the
// value is not a date/time.
func (c *conv) dateTime(raw []byte) string {
	t, ok := parseDTM(c.text(c.sub(c.comp(raw, 1), 1)))
	if !ok {
		return ""
	}
	return c.formatTime(t, 1)
}

// instant is dateTime for an instant: seconds and a zone required, so
// values less precise than a minute give "".
func (c *conv) instant(raw []byte) string {
	t, ok := parseDTM(c.text(c.sub(c.comp(raw, 1), 1)))
	if !ok || t.precision < 5 {
		return ""
	}
	return c.formatTime(t, 4)
}

// date maps to a FHIR date (birthDate), dropping any time.
func (c *conv) date(raw []byte) string {
	t, ok := parseDTM(c.text(c.sub(c.comp(raw, 1), 1)))
	if !ok {
		return ""
	}
	if t.precision > 3 {
		t.precision = 3
	}
	return c.formatTime(t, 1)
}

func (c *conv) formatTime(t hl7Time, min int) string {
	if t.precision < min {
		return ""
	}
	var buf [40]byte
	b := buf[:0]
	b = appendInt(b, t.y, 4)
	if t.precision >= 2 {
		b = appendInt(append(b, '-'), t.mo, 2)
	}
	if t.precision >= 3 {
		b = appendInt(append(b, '-'), t.d, 2)
	}
	if t.precision >= 4 {
		b = appendInt(append(b, 'T'), t.h, 2)
		b = appendInt(append(b, ':'), t.mi, 2)
		b = appendInt(append(b, ':'), t.s, 2)
		if t.frac != "" {
			b = append(append(b, '.'), t.frac...)
		}
		if t.zone != "" {
			b = append(b, t.zone...)
		} else {
			_, off := time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, 0, c.loc).Zone()
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			b = appendInt(append(b, sign), off/3600, 2)
			b = appendInt(append(b, ':'), off%3600/60, 2)
		}
	}
	return string(b)
}

func appendInt(b []byte, n, width int) []byte {
	var d [8]byte
	i := len(d)
	for ; n > 0 || width > 0; width-- {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[i:]...)
}

// decimal returns s as a FHIR decimal ("" when it is not a number):
// HL7 NM allows a leading + and leading zeros, FHIR neither.
func decimal(s string) string {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, fracPart, hasPoint := strings.Cut(s, ".")
	if (intPart == "" && fracPart == "") || (intPart != "" && !allDigits(intPart)) || (fracPart != "" && !allDigits(fracPart)) {
		return ""
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if hasPoint && fracPart != "" {
		out += "." + fracPart
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out
}

// quantity is a Quantity with a unit from a CWE (OBX-6, RXA-7): the unit's
// code and system when UCUM, its text as the unit.
func (c *conv) quantity(value string, unitRaw []byte) *obj {
	if value == "" {
		return nil
	}
	q := c.newObj("value", num(value))
	c.setUnit(q, unitRaw)
	return q
}

// setUnit gives q the unit of a CWE (CWE[Quantity]): its text (or code)
// as the unit, and its code and system when it names a coding system
// (UCUM's units as http://unitsofmeasure.org). FHIR forbids a code
// without a system (qty-3), so a unit with no system is text only.
func (c *conv) setUnit(q *obj, unitRaw []byte) {
	code, text, system := c.compText(unitRaw, 1), c.compText(unitRaw, 2), c.compText(unitRaw, 3)
	q.str("unit", orDefault(text, code))
	if code == "" || system == "" {
		return
	}
	if strings.EqualFold(system, "ANSI+") || strings.EqualFold(system, "ISO+") { // v2.3's unit tables, UCUM's predecessors
		system = "UCUM"
	}
	q.str("system", systemURI(system)).str("code", code)
}

// attachment maps ED (ED[Attachment]): ED-2/3 the content type, ED-5 the
// data (base64 as sent when ED-4 says Base64, else encoded here).
func (c *conv) attachment(raw []byte) *obj {
	data := c.comp(raw, 5)
	if len(data) == 0 {
		return nil
	}
	typ, sub, enc := c.compText(raw, 2), c.compText(raw, 3), c.compText(raw, 4)
	ct := mimeType(typ, sub)
	a := c.strObj("contentType", ct)
	if b64 := strings.Map(dropSpace, string(data)); strings.EqualFold(enc, "Base64") && validBase64(b64) {
		a.str("data", b64)
	} else { // text, or base64 that does not decode: the characters as sent
		if !strings.EqualFold(enc, "Base64") || ct == "application/octet-stream" {
			a.str("contentType", "text/plain")
		}
		a.str("data", base64Std(c.text(data)))
	}
	return a
}

func validBase64(s string) bool {
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
		return -1
	}
	return r
}

func mimeType(typ, sub string) string {
	switch {
	case strings.Contains(sub, "/"):
		return sub
	case strings.EqualFold(sub, "PDF"):
		return "application/pdf"
	case strings.EqualFold(sub, "RTF"):
		return "application/rtf"
	case strings.EqualFold(sub, "JPEG") || strings.EqualFold(sub, "JPG"):
		return "image/jpeg"
	case strings.EqualFold(sub, "PNG"):
		return "image/png"
	case strings.EqualFold(sub, "TIFF"):
		return "image/tiff"
	case strings.EqualFold(sub, "HTML"):
		return "text/html"
	case strings.EqualFold(sub, "XML"):
		return "text/xml"
	case strings.EqualFold(typ, "TEXT") || strings.EqualFold(typ, "TX"):
		return "text/plain"
	case strings.EqualFold(typ, "IM") || strings.EqualFold(typ, "image"):
		return "image/" + strings.ToLower(sub)
	case strings.EqualFold(typ, "AP") || strings.EqualFold(typ, "application"):
		if sub != "" {
			return "application/" + strings.ToLower(sub)
		}
	}
	return "application/octet-stream"
}
