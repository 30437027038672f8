package fhir

import (
	"bytes"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// ORC[ServiceRequest]: the order's identifiers (ORC-2 placer, ORC-3
// filler, ORC-4 group), status (ORC-5, else ORC-1), when and by whom.
func (c *conv) orc(seg hl7.Segment, key string) *entry {
	e := c.resource("ServiceRequest", key)
	r := e.res
	r.add("identifier", c.eiIdentifier(c.first(seg, 2), "PLAC"))
	r.add("identifier", c.eiIdentifier(c.first(seg, 3), "FILL"))
	r.set("requisition", c.eiIdentifier(c.first(seg, 4), ""))
	status := orderStatusMap[c.fieldText(seg, 5)]
	if status == "" {
		status = orderControlMap[c.fieldText(seg, 1)]
	}
	r.str("status", orDefault(status, "unknown"))
	r.str("intent", "order")
	r.set("subject", c.patientRef())
	r.set("encounter", c.encounterRef())
	r.str("authoredOn", c.dateTime(field(seg, 9)))
	r.set("requester", c.practitionerRef(c.first(seg, 12)))
	return e
}

// OBR: in a result (ORU) a DiagnosticReport based on the order; in an
// order (ORM, OML) the order's details. An OBR without an ORC is its own
// order.
func (c *conv) obr(x *segContext, seg hl7.Segment, key string) {
	x.obr, x.hasOBR = seg, true
	x.obrTime, x.obrIssued = c.dateTime(field(seg, 7)), c.instant(field(seg, 22)) // its OBXs' defaults
	if x.order == nil || x.report != nil {
		x.order = c.resource("ServiceRequest", key)
		r := x.order.res
		r.add("identifier", c.eiIdentifier(c.first(seg, 2), "PLAC"))
		r.add("identifier", c.eiIdentifier(c.first(seg, 3), "FILL"))
		r.str("status", orDefault(orderStatusForResult(c.code), "unknown"))
		r.str("intent", "order")
		r.set("subject", c.patientRef())
		r.set("encounter", c.encounterRef())
	}
	x.report = nil
	sr := x.order.res
	code := c.first(seg, 4)
	if !sr.has("code") {
		sr.set("code", c.codeableConcept(code))
	}
	if !sr.has("requester") {
		sr.set("requester", c.practitionerRef(c.first(seg, 16)))
	}
	c.reps(field(seg, 31), func(b []byte) { sr.add("reasonCode", c.codeableConcept(b)) })
	x.last = x.order
	if c.code != "ORU" {
		return
	}
	e := c.resource("DiagnosticReport", key)
	x.report, x.last = e, e
	r := e.res
	r.add("identifier", c.eiIdentifier(c.first(seg, 3), "FILL"))
	r.add("basedOn", x.order.ref())
	r.str("status", orDefault(reportStatusMap[c.fieldText(seg, 25)], "unknown"))
	if s := c.first(seg, 24); c.compText(s, 1) != "" {
		r.add("category", c.newObj("coding", []*obj{c.newObj("system", v2Table("0074"), "code", c.compText(s, 1))}))
	}
	r.set("code", c.required(c.codeableConcept(code)))
	r.set("subject", c.patientRef())
	r.set("encounter", c.encounterRef())
	if end := c.dateTime(field(seg, 8)); end != "" {
		r.set("effectivePeriod", c.newObj("start", c.dateTime(field(seg, 7)), "end", end))
	} else {
		r.str("effectiveDateTime", c.dateTime(field(seg, 7)))
	}
	r.str("issued", c.instant(field(seg, 22)))
	c.reps(field(seg, 32), func(b []byte) { // NDL: its first component is a CNN, subcomponents like XCN's
		cnn := bytes.ReplaceAll(c.comp(b, 1), []byte{c.d.Subcomponent}, []byte{c.d.Component})
		r.add("resultsInterpreter", c.practitionerRef(cnn))
	})
}

// orderStatusForResult: an order whose results arrive is complete in the
// IG's ORU map; an order message leaves it unknown until ORC says.
func orderStatusForResult(code string) string {
	if code == "ORU" {
		return "completed"
	}
	return ""
}

// required gives an element FHIR requires that the message left empty the
// data-absent-reason extension instead of a value.
func (c *conv) required(v *obj) *obj {
	if !v.empty() {
		return v
	}
	return c.newObj("extension", []*obj{c.newObj("url", extDataAbsent, "valueCode", "unknown")})
}

// OBX[Observation]; an ED value becomes a DocumentReference (OBX
// [DocumentReference]); in MDM the values are the document's content.
func (c *conv) obx(x *segContext, seg hl7.Segment, key string) {
	vt := strings.ToUpper(c.fieldText(seg, 2))
	if x.doc != nil {
		c.documentContent(x, seg, vt)
		return
	}
	if vt == "ED" || vt == "RP" {
		x.last = c.obxDocument(seg, key)
		return
	}
	e := c.resource("Observation", key)
	x.last = e
	r := e.res
	r.add("identifier", c.eiIdentifier(c.first(seg, 21), ""))
	if x.order != nil && c.code == "ORU" {
		r.add("basedOn", x.order.ref())
	}
	if x.imm != nil {
		r.add("partOf", x.imm.ref())
	}
	r.str("status", orDefault(observationStatusMap[c.fieldText(seg, 11)], "unknown"))
	r.set("code", c.required(c.codeableConcept(c.first(seg, 3))))
	r.set("subject", c.patientRef())
	r.set("encounter", c.encounterRef())
	eff := c.dateTime(field(seg, 14))
	if eff == "" && x.hasOBR {
		eff = x.obrTime
	}
	r.str("effectiveDateTime", eff)
	if x.hasOBR {
		r.str("issued", x.obrIssued)
	}
	c.reps(field(seg, 16), func(b []byte) { r.add("performer", c.practitionerRef(b)) })
	c.reps(field(seg, 23), func(b []byte) { r.add("performer", c.xonOrganizationRef(b)) })
	c.observationValue(r, vt, field(seg, 5), c.first(seg, 6))
	c.reps(field(seg, 8), func(b []byte) {
		code := c.compText(b, 1)
		if v3, ok := interpretationMap[code]; ok {
			r.add("interpretation", c.newObj("coding", []*obj{c.newObj("system", v3Interpretation, "code", v3, "display", c.compText(b, 2))}))
		} else {
			r.add("interpretation", c.tableConcept(b, "0078"))
		}
	})
	if m := c.first(seg, 17); c.compText(m, 1) != "" || c.compText(m, 2) != "" {
		r.set("method", c.codeableConcept(m))
	}
	if s := c.first(seg, 20); c.compText(s, 1) != "" || c.compText(s, 2) != "" {
		r.set("bodySite", c.codeableConcept(s))
	}
	if rr := c.fieldText(seg, 7); rr != "" {
		r.add("referenceRange", c.strObj("text", rr))
	}
	if x.report != nil {
		x.report.res.add("result", e.ref())
	}
	if x.order != nil && c.code != "ORU" {
		x.order.res.add("supportingInfo", e.ref())
	}
}

// observationValue maps OBX-5 by OBX-2 (the IG's OBX-5 rows): NM to a
// Quantity, SN to a Quantity with comparator, a Range or a Ratio, CWE/CE/
// CNE to a CodeableConcept, ST/TX/FT to a string (repetitions as lines),
// DT/DTM/TS to a dateTime, TM to a time, NA to SampledData. A value that
// does not read as its type is kept as a string: nothing is dropped.
func (c *conv) observationValue(r *obj, vt string, raw, unit []byte) {
	first := piece(raw, c.d.Repetition, 1)
	switch vt {
	case "NM":
		s := c.text(first)
		if d := decimal(s); d != "" {
			r.set("valueQuantity", c.quantity(d, unit))
			return
		}
		if q := c.comparatorQuantity(s, unit); q != nil {
			r.set("valueQuantity", q)
			return
		}
	case "SN":
		if c.structuredNumeric(r, first, unit) {
			return
		}
	case "CWE", "CE", "CNE", "CF", "CD":
		if cc := c.codeableConcept(first); !cc.empty() {
			r.set("valueCodeableConcept", cc)
		}
		return
	case "IS", "ID":
		if v := c.compText(first, 1); v != "" {
			r.set("valueCodeableConcept", c.newObj("coding", []*obj{c.newObj("code", v)}))
		}
		return
	case "DT", "DTM", "TS":
		if v := c.dateTime(first); v != "" {
			r.str("valueDateTime", v)
			return
		}
	case "TM":
		if v := hl7TimeOfDay(c.text(first)); v != "" {
			r.str("valueTime", v)
			return
		}
	case "NA":
		var vals []string
		split(first, c.d.Component, func(b []byte) {
			if d := decimal(c.text(b)); d != "" {
				vals = append(vals, d)
			} else {
				vals = append(vals, "E")
			}
		})
		if len(vals) > 0 {
			r.set("valueSampledData", c.newObj("origin", c.newObj("value", num("0")), "period", num("0"), "dimensions", 1, "data", strings.Join(vals, " ")))
			return
		}
	}
	var lines []string
	split(raw, c.d.Repetition, func(b []byte) {
		if vt == "ST" || vt == "TX" || vt == "FT" || vt == "" {
			lines = append(lines, c.text(b))
		} else {
			lines = append(lines, c.componentsText(b))
		}
	})
	r.str("valueString", strings.TrimSpace(strings.Join(lines, "\n")))
}

// componentsText is a composite value as text, its parts spaced.
func (c *conv) componentsText(raw []byte) string {
	var parts []string
	split(raw, c.d.Component, func(b []byte) {
		if t := c.text(b); t != "" {
			parts = append(parts, t)
		}
	})
	return strings.Join(parts, " ")
}

var comparators = []string{"<=", ">=", "<", ">"}

func (c *conv) comparatorQuantity(s string, unit []byte) *obj {
	for _, cmp := range comparators {
		if rest, ok := strings.CutPrefix(s, cmp); ok {
			if d := decimal(rest); d != "" {
				q := c.newObj("value", num(d), "comparator", cmp)
				c.setUnit(q, unit)
				return q
			}
		}
	}
	return nil
}

// structuredNumeric maps SN (comparator^num1^separator^num2).
func (c *conv) structuredNumeric(r *obj, raw, unit []byte) bool {
	cmp, n1, sep, n2 := c.compText(raw, 1), decimal(c.compText(raw, 2)), c.compText(raw, 3), decimal(c.compText(raw, 4))
	switch {
	case n1 != "" && sep == "" && n2 == "":
		q := c.quantity(n1, unit)
		if cmp == "<" || cmp == ">" || cmp == "<=" || cmp == ">=" {
			q.str("comparator", cmp)
		}
		r.set("valueQuantity", q)
		return true
	case (sep == "-" || sep == "") && (n1 != "" || n2 != "") && cmp == "":
		r.set("valueRange", c.newObj("low", c.quantity(n1, unit), "high", c.quantity(n2, unit)))
		return true
	case (sep == ":" || sep == "/") && n1 != "" && n2 != "" && cmp == "":
		r.set("valueRatio", c.newObj("numerator", c.newObj("value", num(n1)), "denominator", c.newObj("value", num(n2))))
		return true
	}
	return false
}

// hl7TimeOfDay maps TM (HH[MM[SS[.S]]]) to a FHIR time (HH:MM:SS).
func hl7TimeOfDay(s string) string {
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		s = s[:i]
	}
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, frac = s[:i], s[i:]
	}
	if !allDigits(s) || len(s) < 2 || len(s) > 6 || len(s)%2 != 0 {
		return ""
	}
	s += "0000"[:6-len(s)]
	if s[:2] > "23" || s[2:4] > "59" || s[4:6] > "59" || (frac != "" && !allDigits(frac[1:])) {
		return ""
	}
	return s[:2] + ":" + s[2:4] + ":" + s[4:6] + frac
}

// obxDocument maps an OBX holding a document (ED, RP) to a
// DocumentReference (OBX[DocumentReference]).
func (c *conv) obxDocument(seg hl7.Segment, key string) *entry {
	e := c.resource("DocumentReference", key)
	r := e.res
	r.str("status", "current")
	if st := observationStatusMap[c.fieldText(seg, 11)]; st == "final" || st == "preliminary" {
		r.str("docStatus", st)
	}
	r.set("type", c.codeableConcept(c.first(seg, 3)))
	r.set("subject", c.patientRef())
	c.reps(field(seg, 5), func(b []byte) {
		if a := c.attachment(b); a != nil {
			r.add("content", c.newObj("attachment", a))
		} else if t := c.compText(b, 1); t != "" { // RP: a pointer to the document
			r.add("content", c.newObj("attachment", c.newObj("url", t)))
		}
	})
	if !r.has("content") {
		r.add("content", c.newObj("attachment", c.required(nil)))
	}
	if c.encounter != nil {
		r.set("context", c.newObj("encounter", []*obj{c.encounter.ref()}))
	}
	return e
}

// NTE → note on the resource before it (Observation, order, allergy, ...).
func (c *conv) nte(x *segContext, seg hl7.Segment) {
	if x.last == nil {
		return
	}
	var lines []string
	split(field(seg, 3), c.d.Repetition, func(b []byte) { lines = append(lines, c.text(b)) })
	text := strings.TrimSpace(strings.Join(lines, "\n"))
	if text == "" {
		return
	}
	switch x.last.typ {
	case "Observation", "ServiceRequest", "DiagnosticReport", "AllergyIntolerance", "Condition", "Immunization", "Specimen":
		if x.last.typ == "DiagnosticReport" { // DiagnosticReport has no note in R4: the IG puts OBR's NTE on the order
			x.order.res.add("note", c.strObj("text", text))
			return
		}
		x.last.res.add("note", c.strObj("text", text))
	}
}

// SPM[Specimen]: identifiers (SPM-2 placer&filler), type (4), collection
// method (7), body site (8), time (17), received (18).
func (c *conv) spm(x *segContext, seg hl7.Segment, key string) {
	e := c.resource("Specimen", key)
	r := e.res
	ids := c.first(seg, 2)
	r.add("identifier", c.eiIdentifierSub(c.comp(ids, 1), "PLAC"))
	r.add("identifier", c.eiIdentifierSub(c.comp(ids, 2), "FILL"))
	if t := c.first(seg, 4); c.compText(t, 1) != "" || c.compText(t, 2) != "" {
		r.set("type", c.codeableConcept(t))
	}
	r.set("subject", c.patientRef())
	r.str("receivedTime", c.dateTime(field(seg, 18)))
	col := &obj{}
	collected := c.first(seg, 17)
	if end := c.dateTime(c.comp(collected, 2)); end != "" {
		col.set("collectedPeriod", c.newObj("start", c.dateTime(c.comp(collected, 1)), "end", end))
	} else {
		col.str("collectedDateTime", c.dateTime(c.comp(collected, 1)))
	}
	if m := c.first(seg, 7); c.compText(m, 1) != "" || c.compText(m, 2) != "" {
		col.set("method", c.codeableConcept(m))
	}
	if s := c.first(seg, 8); c.compText(s, 1) != "" || c.compText(s, 2) != "" {
		col.set("bodySite", c.codeableConcept(s))
	}
	r.set("collection", col)
	x.last = e
	if x.report != nil {
		x.report.res.add("specimen", e.ref())
	}
	if x.order != nil {
		x.order.res.add("specimen", e.ref())
	}
}

// eiIdentifierSub maps an EI held in subcomponents (EIP's parts).
func (c *conv) eiIdentifierSub(raw []byte, typ string) *obj {
	value := c.text(c.sub(raw, 1))
	if value == "" {
		return nil
	}
	system := idSystem(c.text(c.sub(raw, 2)), c.text(c.sub(raw, 3)), c.text(c.sub(raw, 4)))
	return c.newObj("type", c.identifierType(typ), "system", system, "value", value)
}

// RXA[Immunization].
func (c *conv) rxa(seg hl7.Segment, key string, orcFiller []byte) *entry {
	e := c.resource("Immunization", key)
	r := e.res
	r.add("identifier", c.eiIdentifier(piece(orcFiller, c.d.Repetition, 1), "FILL"))
	status := immunizationStatusMap[c.fieldText(seg, 20)]
	if strings.EqualFold(c.fieldText(seg, 21), "D") {
		status = "entered-in-error"
	}
	r.str("status", orDefault(status, "completed"))
	if sr := c.first(seg, 18); c.compText(sr, 1) != "" || c.compText(sr, 2) != "" {
		r.set("statusReason", c.codeableConcept(sr))
	}
	r.set("vaccineCode", c.required(c.codeableConcept(c.first(seg, 5))))
	r.set("patient", c.patientRef())
	r.set("encounter", c.encounterRef())
	if occ := c.dateTime(field(seg, 3)); occ != "" {
		r.str("occurrenceDateTime", occ)
	} else {
		r.set("_occurrenceDateTime", c.required(nil))
	}
	if src := c.first(seg, 9); c.compText(src, 1) != "" {
		code := c.compText(src, 1)
		r.set("primarySource", code == "00")
		if code != "00" {
			r.set("reportOrigin", c.codeableConcept(src))
		}
	}
	r.set("manufacturer", c.manufacturerRef(c.first(seg, 17)))
	r.str("lotNumber", c.fieldText(seg, 15))
	r.str("expirationDate", c.date(c.first(seg, 16)))
	if dose := decimal(c.fieldText(seg, 6)); dose != "" && dose != "999" {
		r.set("doseQuantity", c.quantity(dose, c.first(seg, 7)))
	}
	c.reps(field(seg, 10), func(b []byte) {
		if who := c.practitionerRef(b); who != nil {
			r.add("performer", c.newObj("function", c.newObj("coding", []*obj{c.newObj("system", v2Table("0443"), "code", "AP", "display", "Administering Provider")}), "actor", who))
		}
	})
	return e
}

// manufacturerRef maps RXA-17 (CWE, MVX codes) to a shared Organization.
func (c *conv) manufacturerRef(raw []byte) *obj {
	code, name := c.compText(raw, 1), c.compText(raw, 2)
	if code == "" && name == "" {
		return nil
	}
	e, _ := c.organization(systemURI(c.compText(raw, 3)), code, name)
	return e.ref()
}

// RXR → Immunization route (RXR-1, table 0162) and site (RXR-2, 0163).
func (c *conv) rxr(imm *entry, seg hl7.Segment) {
	if imm == nil {
		return
	}
	if s := c.first(seg, 2); c.compText(s, 1) != "" {
		imm.res.set("site", c.tableConcept(s, "0163"))
	}
	if rt := c.first(seg, 1); c.compText(rt, 1) != "" {
		imm.res.set("route", c.tableConcept(rt, "0162"))
	}
}

// TXA[DocumentReference]: the document's identity and state; the OBX
// values that follow are its content (finishDocument).
func (c *conv) txa(seg hl7.Segment, key string) *entry {
	e := c.resource("DocumentReference", key)
	r := e.res
	r.set("masterIdentifier", c.eiIdentifier(c.first(seg, 12), ""))
	r.add("identifier", c.eiIdentifier(c.first(seg, 14), "PLAC"))
	r.add("identifier", c.eiIdentifier(c.first(seg, 15), "FILL"))
	r.str("status", orDefault(docAvailabilityMap[c.fieldText(seg, 19)], "current"))
	r.str("docStatus", docStatusMap[c.fieldText(seg, 17)])
	if t := c.first(seg, 2); c.compText(t, 1) != "" || c.compText(t, 2) != "" {
		r.set("type", c.tableConcept(t, "0270"))
	}
	r.set("subject", c.patientRef())
	r.str("date", c.instant(field(seg, 4)))
	c.reps(field(seg, 9), func(b []byte) { r.add("author", c.practitionerRef(b)) })
	r.set("authenticator", c.practitionerRef(c.first(seg, 22)))
	return e
}

// documentContent gathers an MDM OBX's value into the document.
func (c *conv) documentContent(x *segContext, seg hl7.Segment, vt string) {
	if vt == "ED" {
		c.reps(field(seg, 5), func(b []byte) {
			if a := c.attachment(b); a != nil {
				x.docAttch = append(x.docAttch, a)
			}
		})
		return
	}
	split(field(seg, 5), c.d.Repetition, func(b []byte) { x.docTexts = append(x.docTexts, c.text(b)) })
}

func (c *conv) finishDocument(x *segContext) {
	if x.doc == nil {
		return
	}
	r := x.doc.res
	ct := x.docType
	if len(x.docTexts) > 0 {
		r.add("content", c.newObj("attachment", c.newObj("contentType", "text/plain; charset=utf-8", "data", base64Std(strings.Join(x.docTexts, "\n")))))
	}
	for _, a := range x.docAttch {
		r.add("content", c.newObj("attachment", a))
	}
	if !r.has("content") {
		r.add("content", c.newObj("attachment", c.newObj("contentType", mimeType(ct, ""))))
	}
	if c.encounter != nil {
		r.set("context", c.newObj("encounter", []*obj{c.encounter.ref()}))
	}
}

// SCH[Appointment] (SIU): identifiers (SCH-1 placer, SCH-2 filler), status
// (SCH-25, else by the trigger event), reason (SCH-7), time (SCH-11's
// start and end), and the people and places of AIP, AIL and AIS.
func (c *conv) sch(seg hl7.Segment, key string) *entry {
	e := c.resource("Appointment", key)
	r := e.res
	r.add("identifier", c.eiIdentifier(c.first(seg, 1), "PLAC"))
	r.add("identifier", c.eiIdentifier(c.first(seg, 2), "FILL"))
	status := appointmentStatusMap[c.fieldText(seg, 25)]
	if status == "" {
		status = map[string]string{"S15": "cancelled", "S17": "entered-in-error", "S26": "noshow"}[c.event]
	}
	r.str("status", orDefault(status, "booked"))
	if t := c.first(seg, 8); c.compText(t, 1) != "" || c.compText(t, 2) != "" {
		r.set("appointmentType", c.tableConcept(t, "0277"))
	}
	if rc := c.first(seg, 7); c.compText(rc, 1) != "" || c.compText(rc, 2) != "" {
		r.add("reasonCode", c.codeableConcept(rc))
	}
	tq := c.first(seg, 11)
	start, end := c.instant(c.comp(tq, 4)), c.instant(c.comp(tq, 5))
	if start != "" && end != "" {
		r.str("start", start).str("end", end)
	}
	if d := decimal(c.fieldText(seg, 9)); d != "" && !strings.Contains(d, ".") && d != "0" && strings.HasPrefix(strings.ToLower(c.fieldText(seg, 10)), "min") {
		r.set("minutesDuration", num(d))
	}
	r.str("comment", c.fieldText(seg, 6))
	return e
}

func (c *conv) appointmentResource(appt *entry, seg hl7.Segment) {
	if appt == nil {
		return
	}
	var actor *obj
	switch seg.Name() {
	case "AIP":
		actor = c.practitionerRef(c.first(seg, 3))
	case "AIL":
		actor = c.locationRef(c.first(seg, 3))
	}
	if actor != nil {
		appt.res.add("participant", c.newObj("actor", actor, "status", "accepted"))
	}
}

// finishAppointment adds the patient as a participant (FHIR requires one).
func (c *conv) finishAppointment(appt *entry) {
	if appt == nil {
		return
	}
	appt.res.add("participant", c.newObj("actor", c.patientRef(), "status", "accepted"))
}
