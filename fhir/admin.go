package fhir

import (
	"bytes"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// MSH[MessageHeader]: the event (MSH-9.2, table 0003), the source (MSH-3
// application, MSH-4 facility as the sender) and destination (MSH-5, 6).
func (c *conv) messageHeader(msh hl7.Segment) {
	e := c.resource("MessageHeader", "MSH")
	event := c.event
	e.res.set("eventCoding", c.newObj("system", v2Table("0003"), "code", event))
	if dest := field(msh, 5); c.compText(dest, 1) != "" || c.compText(dest, 2) != "" {
		d := c.strObj("name", c.compText(dest, 1))
		c.setEndpoint(d, dest)
		e.res.add("destination", d.set("receiver", c.organizationRef(field(msh, 6))))
	}
	if org := c.organizationRef(field(msh, 4)); org != nil {
		c.sender = c.byID[strings.TrimPrefix(org.text("reference"), "urn:uuid:")]
		e.res.set("sender", org)
	}
	src := field(msh, 3)
	source := c.strObj("name", c.compText(src, 1))
	c.setEndpoint(source, src)
	e.res.set("source", source)
}

// setEndpoint names an application (HD) as a URI, as MessageHeader's
// endpoints must be: its universal ID, else urn:id:<namespace>; an
// application with no name gets the data-absent-reason extension, since
// FHIR requires an endpoint.
func (c *conv) setEndpoint(o *obj, hd []byte) {
	if s := c.hdSystem(hd); s != "" {
		o.str("endpoint", s)
		return
	}
	o.set("_endpoint", c.required(nil))
}

// organizationRef maps an HD or XON (MSH-4, RXA-17's manufacturer uses
// CWE: see manufacturer) to a shared Organization: name and identifier.
func (c *conv) organizationRef(hd []byte) *obj {
	name, system := c.compText(hd, 1), c.hdSystem(hd)
	if name == "" && system == "" {
		return nil
	}
	e, isNew := c.shared("Organization", system, name)
	if isNew {
		var ident *obj
		if uid := c.text(c.sub(c.comp(hd, 2), 1)); uid != "" {
			ident = c.strObj("system", "urn:ietf:rfc:3986", "value", system)
		} else {
			ident = c.strObj("value", name)
		}
		e.res.add("identifier", ident)
		e.res.str("name", name)
		if uid := c.text(c.sub(c.comp(hd, 2), 1)); uid != "" {
			c.conditional(e, ident)
		}
	}
	return e.ref()
}

// xonOrganizationRef maps XON (organization name^^ID^^^assigning
// authority) to a shared Organization.
func (c *conv) xonOrganizationRef(raw []byte) *obj {
	name, id := c.compText(raw, 1), c.compText(raw, 10)
	if id == "" {
		id = c.compText(raw, 3)
	}
	if name == "" && id == "" {
		return nil
	}
	e, _ := c.organization(c.hdSystem(c.comp(raw, 6)), id, name)
	return e.ref()
}

// organization adds, or finds, the shared Organization with identifier
// system|id and name: written as a conditional update on its identifier.
func (c *conv) organization(system, id, name string) (e *entry, isNew bool) {
	e, isNew = c.shared("Organization", system, id, name)
	if isNew {
		ident := c.strObj("system", system, "value", id)
		e.res.add("identifier", ident)
		e.res.str("name", name)
		c.conditional(e, ident)
	}
	return e, isNew
}

// practitionerRef maps XCN (XCN[Practitioner]): XCN-1 the identifier with
// its system (9) and type (13), the name from 2-7, to a shared
// Practitioner.
func (c *conv) practitionerRef(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	id := c.partText(&cs, 1)
	system := c.hdSystem(cs.at(9))
	family, given := c.partText(&cs, 2), c.partText(&cs, 3)
	if id == "" && family == "" && given == "" {
		return nil
	}
	scope := "" // a practitioner with no ID is known by name only within one sender
	if id == "" {
		scope = c.sender3and4
	}
	e, isNew := c.shared("Practitioner", system, id, family, given, scope)
	if isNew {
		ident := c.newObj("type", c.identifierType(c.partText(&cs, 13)), "system", system, "value", id)
		e.res.add("identifier", ident)
		name := c.strObj("family", family)
		name.addString("given", given)
		name.addString("given", c.partText(&cs, 4))
		name.addString("prefix", c.partText(&cs, 6))
		name.addString("suffix", c.partText(&cs, 5))
		name.addString("suffix", c.partText(&cs, 7))
		e.res.add("name", name)
		c.conditional(e, ident)
	}
	return e.ref()
}

// locationRef maps PL (PL[Location]): the most specific of bed, room and
// point of care names the Location, its physical type says which; the
// facility (PL-4) is its managing organization.
func (c *conv) locationRef(raw []byte) *obj {
	cs := splitParts(raw, c.d.Component)
	poc, room, bed := c.partText(&cs, 1), c.partText(&cs, 2), c.partText(&cs, 3)
	facility := cs.at(4)
	desc := c.partText(&cs, 9)
	if poc == "" && room == "" && bed == "" && desc == "" {
		return nil
	}
	scope := "" // without a facility, a ward's name means something only to its sender
	if c.compText(facility, 1) == "" {
		scope = c.sender3and4
	}
	e, isNew := c.shared("Location", c.compText(facility, 1), poc, room, bed, desc, scope)
	if isNew {
		parts := make([]string, 0, 3)
		for _, p := range []string{poc, room, bed} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		name := strings.Join(parts, " ")
		if name == "" {
			name = desc
		}
		e.res.str("status", "active").str("name", name).str("description", desc).str("mode", "instance")
		typ := ""
		switch {
		case bed != "":
			typ = "bd"
		case room != "":
			typ = "ro"
		case poc != "":
			typ = "wa"
		}
		if typ != "" {
			e.res.set("physicalType", c.newObj("coding", []*obj{c.newObj("system", "http://terminology.hl7.org/CodeSystem/location-physical-type", "code", typ)}))
		}
		e.res.set("managingOrganization", c.organizationRef(facility))
	}
	return e.ref()
}

// eiIdentifier maps EI (EI[Identifier]): EI-1 value, EI-2/3/4 as an HD
// for the system, with an identifier type (PLAC, FILL) when given.
func (c *conv) eiIdentifier(raw []byte, typ string) *obj {
	cs := splitParts(raw, c.d.Component)
	value := c.partText(&cs, 1)
	if value == "" {
		return nil
	}
	system := idSystem(c.partText(&cs, 2), c.partText(&cs, 3), c.partText(&cs, 4))
	return c.newObj("type", c.identifierType(typ), "system", system, "value", value)
}

// PID[Patient].
func (c *conv) pid(seg hl7.Segment, key string) {
	e := c.resource("Patient", key)
	c.patient = e
	p := e.res
	if v := c.instant(field(seg, 33)); v != "" {
		p.set("meta", c.newObj("lastUpdated", v))
	}
	var key3 *obj // identifier the conditional update uses: an MR first
	for _, f := range []int{2, 3, 4} {
		c.reps(field(seg, f), func(r []byte) {
			id := c.identifier(r)
			p.add("identifier", id)
			if f == 3 && id != nil && id.has("system") && (key3 == nil || c.compText(r, 5) == "MR" && !hasType(key3, "MR")) {
				key3 = id
			}
		})
	}
	if ssn := c.fieldText(seg, 19); ssn != "" {
		p.add("identifier", c.newObj("type", c.identifierType("SS"), "system", "http://hl7.org/fhir/sid/us-ssn", "value", ssn))
	}
	if dl := c.first(seg, 20); c.compText(dl, 1) != "" {
		p.add("identifier", c.newObj("type", c.identifierType("DL"), "system", systemURIForNamespace(orDefault(c.compText(dl, 2), "DL")), "value", c.compText(dl, 1),
			"period", c.newObj("end", c.date(c.comp(dl, 3)))))
	}
	c.reps(field(seg, 5), func(r []byte) { p.add("name", c.humanName(r)) })
	c.reps(field(seg, 9), func(r []byte) { p.add("name", c.humanName(r)) })
	if mm := c.compText(c.first(seg, 6), 1); mm != "" {
		p.add("extension", c.strObj("url", extMothersMaiden, "valueString", mm))
	}
	c.reps(field(seg, 13), func(r []byte) { p.add("telecom", c.contactPoint(r, "home")) })
	c.reps(field(seg, 14), func(r []byte) { p.add("telecom", c.contactPoint(r, "work")) })
	p.str("gender", genderMap[strings.ToUpper(c.fieldText(seg, 8))])
	p.str("birthDate", c.date(field(seg, 7)))
	if bt := c.dateTime(field(seg, 7)); len(bt) > 10 {
		p.set("_birthDate", c.newObj("extension", []*obj{c.newObj("url", extBirthTime, "valueDateTime", bt)}))
	}
	if dt := c.dateTime(field(seg, 29)); dt != "" {
		p.str("deceasedDateTime", dt)
	} else if b, ok := yesNo(c.fieldText(seg, 30)); ok {
		p.set("deceasedBoolean", b)
	}
	c.reps(field(seg, 11), func(r []byte) { p.add("address", c.address(r)) })
	if ms := c.first(seg, 16); c.compText(ms, 1) != "" {
		code := c.compText(ms, 1)
		if v3, ok := maritalMap[code]; ok {
			p.set("maritalStatus", c.newObj("coding", []*obj{c.newObj("system", v3MaritalStatus, "code", v3, "display", c.compText(ms, 2))}))
		} else {
			p.set("maritalStatus", c.tableConcept(ms, "0002"))
		}
	}
	if n := c.fieldText(seg, 25); n != "" && decimal(n) != "" && !strings.Contains(decimal(n), ".") {
		p.set("multipleBirthInteger", num(decimal(n)))
	} else if b, ok := yesNo(c.fieldText(seg, 24)); ok {
		p.set("multipleBirthBoolean", b)
	}
	if lang := c.first(seg, 15); c.compText(lang, 1) != "" || c.compText(lang, 2) != "" {
		p.add("communication", c.newObj("language", c.codeableConcept(lang)))
	}
	if key3 != nil {
		c.conditional(e, key3)
	}
}

func hasType(id *obj, code string) bool {
	return id.child("type").child("coding").item(0).text("code") == code
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func yesNo(s string) (bool, bool) {
	switch strings.ToUpper(s) {
	case "Y":
		return true, true
	case "N":
		return false, true
	}
	return false, false
}

// PD1-4 → Patient.generalPractitioner.
func (c *conv) pd1(seg hl7.Segment) {
	if c.patient == nil {
		return
	}
	c.reps(field(seg, 4), func(r []byte) { c.patient.res.add("generalPractitioner", c.practitionerRef(r)) })
}

// NK1[RelatedPerson].
func (c *conv) nk1(seg hl7.Segment, key string) {
	r := c.strObj("resourceType", "RelatedPerson")
	c.reps(field(seg, 33), func(b []byte) { r.add("identifier", c.identifier(b)) })
	r.set("patient", c.patientRef())
	if rel := c.first(seg, 3); c.compText(rel, 1) != "" || c.compText(rel, 2) != "" {
		r.add("relationship", c.tableConcept(rel, "0063"))
	}
	if role := c.first(seg, 7); c.compText(role, 1) != "" {
		r.add("relationship", c.tableConcept(role, "0131"))
	}
	c.reps(field(seg, 2), func(b []byte) { r.add("name", c.humanName(b)) })
	c.reps(field(seg, 5), func(b []byte) { r.add("telecom", c.contactPoint(b, "home")) })
	c.reps(field(seg, 6), func(b []byte) { r.add("telecom", c.contactPoint(b, "work")) })
	r.str("gender", genderMap[strings.ToUpper(c.fieldText(seg, 15))])
	r.str("birthDate", c.date(field(seg, 16)))
	c.reps(field(seg, 4), func(b []byte) { r.add("address", c.address(b)) })
	r.set("period", c.period(field(seg, 8), field(seg, 9)))
	if len(r.kvs) <= 2 { // an NK1 with nothing but its set ID
		return
	}
	e := c.resource("RelatedPerson", key)
	for _, f := range r.kvs[1:] {
		e.res.set(f.k, f.v)
	}
}

// PV1[Encounter].
func (c *conv) pv1(seg hl7.Segment, key string) {
	class := c.fieldText(seg, 2)
	visit := c.first(seg, 19)
	if (class == "" || class == "N") && c.compText(visit, 1) == "" && c.dateTime(field(seg, 44)) == "" && c.compText(c.first(seg, 3), 1) == "" {
		return // "not applicable": no encounter in the message
	}
	e := c.resource("Encounter", key)
	c.encounter = e
	r := e.res
	ident := c.identifier(visit)
	if ident != nil && !ident.has("type") {
		ident.set("type", c.identifierType("VN"))
		ident.moveTo("type", 0)
	}
	r.add("identifier", ident)
	r.str("status", c.encounterStatus(seg))
	switch m, ok := patientClassMap[class]; {
	case ok:
		r.set("class", c.newObj("system", v3ActCode, "code", m[0], "display", m[1]))
	case class != "":
		r.set("class", c.newObj("system", v2Table("0004"), "code", class))
	default:
		r.set("class", c.newObj("system", v3NullFlavor, "code", "UNK", "display", "unknown"))
	}
	if t := c.first(seg, 4); c.compText(t, 1) != "" {
		r.add("type", c.tableConcept(t, "0007"))
	}
	if s := c.first(seg, 10); c.compText(s, 1) != "" {
		r.set("serviceType", c.tableConcept(s, "0069"))
	}
	r.set("subject", c.patientRef())
	for _, p := range []struct {
		f    int
		code string
	}{{7, "ATND"}, {8, "REF"}, {9, "CON"}, {17, "ADM"}} {
		c.reps(field(seg, p.f), func(b []byte) {
			if who := c.practitionerRef(b); who != nil {
				r.add("participant", c.newObj("type", []*obj{c.newObj("coding", []*obj{c.newObj("system", v3ParticipantType, "code", p.code)})}, "individual", who))
			}
		})
	}
	r.set("period", c.period(field(seg, 44), field(seg, 45)))
	h := c.newObj("preAdmissionIdentifier", c.identifier(c.first(seg, 5)))
	if s := c.first(seg, 14); c.compText(s, 1) != "" {
		h.set("admitSource", c.tableConcept(s, "0023"))
	}
	if s := c.first(seg, 13); c.compText(s, 1) != "" {
		h.set("reAdmission", c.tableConcept(s, "0092"))
	}
	if s := c.first(seg, 36); c.compText(s, 1) != "" {
		h.set("dischargeDisposition", c.tableConcept(s, "0112"))
	}
	r.set("hospitalization", h)
	if loc := c.locationRef(c.first(seg, 3)); loc != nil {
		r.add("location", c.newObj("location", loc, "status", "active"))
	}
	if loc := c.locationRef(c.first(seg, 6)); loc != nil {
		r.add("location", c.newObj("location", loc, "status", "completed"))
	}
	if ident != nil {
		c.conditional(e, ident)
	}
}

// encounterStatus follows the IG's ADT message maps: a discharge time or
// a discharge event finishes the encounter, a pre-admit plans it, a
// cancel cancels it; otherwise an ADT encounter is in progress, and one a
// result or an order mentions is of unknown state.
func (c *conv) encounterStatus(seg hl7.Segment) string {
	if c.dateTime(field(seg, 45)) != "" {
		return "finished"
	}
	if c.code != "ADT" {
		return "unknown"
	}
	switch c.event {
	case "A03":
		return "finished"
	case "A05", "A14":
		return "planned"
	case "A11", "A27", "A38":
		return "cancelled"
	case "A28", "A31", "A40":
		return "unknown"
	}
	return "in-progress"
}

// PV2-3 → Encounter.reasonCode.
func (c *conv) pv2(seg hl7.Segment) {
	if c.encounter == nil {
		return
	}
	if r := c.first(seg, 3); c.compText(r, 1) != "" || c.compText(r, 2) != "" {
		c.encounter.res.add("reasonCode", c.codeableConcept(r))
	}
}

// MRG (A40 and other merges): the patient merged away, inactive and
// replaced by the message's patient; the two linked both ways.
func (c *conv) mrg(seg hl7.Segment, key string) {
	if c.patient == nil {
		return
	}
	e := c.resource("Patient", key)
	var ident *obj
	for _, f := range []int{1, 2, 4} {
		c.reps(field(seg, f), func(r []byte) {
			id := c.identifier(r)
			e.res.add("identifier", id)
			if ident == nil && id != nil && id.has("system") {
				ident = id
			}
		})
	}
	e.res.set("active", false)
	c.reps(field(seg, 7), func(r []byte) { e.res.add("name", c.humanName(r)) })
	e.res.add("link", c.newObj("other", c.patient.ref(), "type", "replaced-by"))
	c.patient.res.add("link", c.newObj("other", e.ref(), "type", "replaces"))
	c.conditional(e, ident)
}

// AL1[AllergyIntolerance]. clinicalStatus is active: FHIR requires it
// (ait-1) and an allergy a sender lists is one it holds to be current.
func (c *conv) al1(seg hl7.Segment, key string) *entry {
	code := c.first(seg, 3)
	if c.compText(code, 1) == "" && c.compText(code, 2) == "" {
		return nil
	}
	e := c.resource("AllergyIntolerance", key)
	r := e.res
	r.set("clinicalStatus", c.newObj("coding", []*obj{c.newObj("system", sysAllergyCategory, "code", "active")}))
	if cat := allergyCategoryMap[c.fieldText(seg, 2)]; cat != "" {
		r.set("category", []string{cat})
	}
	r.str("criticality", allergyCriticalityMap[c.fieldText(seg, 4)])
	r.set("code", c.codeableConcept(code))
	r.set("patient", c.patientRef())
	r.str("onsetDateTime", c.dateTime(field(seg, 6)))
	reaction := &obj{}
	c.reps(field(seg, 5), func(b []byte) { // ST before v2.6: a lone value is text
		if bytes.IndexByte(b, c.d.Component) < 0 {
			reaction.add("manifestation", c.strObj("text", c.text(b)))
		} else {
			reaction.add("manifestation", c.codeableConcept(b))
		}
	})
	r.add("reaction", reaction)
	return e
}

// DG1[Condition]: an encounter diagnosis, listed on the Encounter too.
func (c *conv) dg1(seg hl7.Segment, key string) *entry {
	code := c.first(seg, 3)
	desc := c.fieldText(seg, 4)
	if c.compText(code, 1) == "" && c.compText(code, 2) == "" && desc == "" {
		return nil
	}
	e := c.resource("Condition", key)
	r := e.res
	r.add("identifier", c.eiIdentifier(c.first(seg, 20), ""))
	r.add("category", c.newObj("coding", []*obj{c.newObj("system", "http://terminology.hl7.org/CodeSystem/condition-category", "code", "encounter-diagnosis")}))
	cc := c.codeableConcept(code)
	if cc.empty() {
		cc = c.strObj("text", desc)
	}
	r.set("code", cc)
	r.set("subject", c.patientRef())
	r.set("encounter", c.encounterRef())
	r.str("onsetDateTime", c.dateTime(field(seg, 5)))
	r.set("asserter", c.practitionerRef(c.first(seg, 16)))
	if c.encounter != nil {
		d := c.newObj("condition", e.ref())
		if rank := decimal(c.fieldText(seg, 15)); rank != "" && rank != "0" && !strings.Contains(rank, ".") {
			d.set("rank", num(rank))
		}
		c.encounter.res.add("diagnosis", d)
	}
	return e
}

// IN1[Coverage]. status is active: FHIR requires one, and IN1 lists the
// coverage in force for the visit.
func (c *conv) in1(seg hl7.Segment, key string) {
	payor := c.insurerRef(seg)
	if payor == nil {
		return
	}
	e := c.resource("Coverage", key)
	r := e.res
	if policy := c.fieldText(seg, 36); policy != "" {
		r.add("identifier", c.strObj("value", policy))
	}
	r.str("status", "active")
	if t := c.first(seg, 15); c.compText(t, 1) != "" {
		r.set("type", c.tableConcept(t, "0086"))
	}
	r.str("subscriberId", c.compText(c.first(seg, 49), 1))
	r.set("beneficiary", c.patientRef())
	if rel := subscriberRelMap[c.fieldText(seg, 17)]; rel != "" {
		r.set("relationship", c.newObj("coding", []*obj{c.newObj("system", "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code", rel)}))
	}
	r.set("period", c.newObj("start", c.date(field(seg, 12)), "end", c.date(field(seg, 13))))
	r.add("payor", payor)
	for _, cl := range []struct {
		f    int
		typ  string
		name int
	}{{8, "group", 9}, {2, "plan", 0}} {
		v := c.fieldText(seg, cl.f)
		if v == "" {
			continue
		}
		name := ""
		if cl.name > 0 {
			name = c.compText(c.first(seg, cl.name), 1)
		} else {
			name = c.compText(c.first(seg, 2), 2)
		}
		r.add("class", c.newObj("type", c.newObj("coding", []*obj{c.newObj("system", "http://terminology.hl7.org/CodeSystem/coverage-class", "code", cl.typ)}),
			"value", v, "name", name))
	}
}

// insurerRef is the Organization of IN1-3 (ID) and IN1-4 (name).
func (c *conv) insurerRef(seg hl7.Segment) *obj {
	idRaw := c.first(seg, 3)
	id, name := c.compText(idRaw, 1), c.compText(c.first(seg, 4), 1)
	if id == "" && name == "" {
		return nil
	}
	e, isNew := c.organization(c.hdSystem(c.comp(idRaw, 4)), id, name)
	if isNew {
		c.reps(field(seg, 5), func(b []byte) { e.res.add("address", c.address(b)) })
	}
	return e.ref()
}

// EVN[Provenance]: what the event was (the trigger), when it was recorded
// (EVN-2, else MSH-7), why (EVN-4), when it happened (EVN-6) and who did
// it (EVN-5, else the sending facility), about the patient and encounter.
func (c *conv) provenance(evn hl7.Segment, key string) {
	msh, _ := firstSegment(c.m, "MSH")
	recorded := c.instant(field(evn, 2))
	if recorded == "" {
		recorded = c.instant(field(msh, 7))
	}
	who := c.practitionerRef(c.first(evn, 5))
	if who == nil && c.sender != nil {
		who = c.sender.ref()
	}
	if recorded == "" || who == nil || c.patient == nil {
		return
	}
	e := c.resource("Provenance", key)
	r := e.res
	r.add("target", c.patient.ref())
	if c.encounter != nil {
		r.add("target", c.encounter.ref())
	}
	r.str("occurredDateTime", c.dateTime(field(evn, 6)))
	r.str("recorded", recorded)
	if reason := c.first(evn, 4); c.compText(reason, 1) != "" {
		r.add("reason", c.tableConcept(reason, "0062"))
	}
	event := c.event
	if event == "" {
		event = c.fieldText(evn, 1)
	}
	r.set("activity", c.newObj("coding", []*obj{c.newObj("system", v2Table("0003"), "code", event)}))
	r.add("agent", c.newObj("type", c.newObj("coding", []*obj{c.newObj("system", "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code", "author")}), "who", who))
}
