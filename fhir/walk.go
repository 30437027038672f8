package fhir

import (
	"strconv"

	"github.com/hl7broker/hl7broker/hl7"
)

// walk reads the message's segments in order, keeping the context a
// segment belongs to (the order an OBX is under, the report it adds to),
// as the IG's message maps do.
type segContext struct {
	order     *entry // ServiceRequest from ORC (or OBR without ORC)
	report    *entry // DiagnosticReport from OBR (ORU)
	last      *entry // resource a following NTE adds notes to
	imm       *entry // Immunization from RXA
	doc       *entry // DocumentReference from TXA
	appt      *entry // Appointment from SCH
	obr       hl7.Segment
	hasOBR    bool
	obrTime   string // OBR-7, as its OBXs' effective time when OBX-14 is empty
	obrIssued string // OBR-22
	orcFill   []byte // ORC-3 for RXA's identifier
	docType   string // TXA-3: the content's type when no OBX gives one
	docTexts  []string
	docAttch  []*obj
	evn       hl7.Segment
	hasEVN    bool
}

func (c *conv) walk() {
	var x segContext
	for seg := range c.m.Segments() {
		key := strconv.Itoa(seg.Index())
		switch seg.Name() {
		case "MSH":
			c.messageHeader(seg)
		case "EVN":
			x.evn, x.hasEVN = seg, true
		case "PID":
			if c.patient == nil {
				c.pid(seg, key)
			}
		case "PD1":
			c.pd1(seg)
		case "NK1":
			c.nk1(seg, key)
		case "PV1":
			if c.encounter == nil {
				c.pv1(seg, key)
			}
		case "PV2":
			c.pv2(seg)
		case "MRG":
			c.mrg(seg, key)
		case "AL1":
			x.last = c.al1(seg, key)
		case "DG1":
			x.last = c.dg1(seg, key)
		case "IN1":
			c.in1(seg, key)
		case "ORC":
			x.order, x.report, x.hasOBR = nil, nil, false
			x.orcFill, _ = seg.Field(3)
			if c.code != "VXU" {
				x.order = c.orc(seg, key)
				x.last = x.order
			}
		case "OBR":
			c.obr(&x, seg, key)
		case "OBX":
			c.obx(&x, seg, key)
		case "NTE":
			c.nte(&x, seg)
		case "SPM":
			c.spm(&x, seg, key)
		case "RXA":
			x.imm = c.rxa(seg, key, x.orcFill)
			x.last = x.imm
		case "RXR":
			c.rxr(x.imm, seg)
		case "TXA":
			x.doc, x.docType = c.txa(seg, key), c.fieldText(seg, 3)
		case "SCH":
			x.appt = c.sch(seg, key)
		case "AIP", "AIL", "AIS":
			c.appointmentResource(x.appt, seg)
		}
	}
	c.finishDocument(&x)
	c.finishAppointment(x.appt)
	if x.hasEVN {
		c.provenance(x.evn, strconv.Itoa(x.evn.Index()))
	}
}

// field returns field n of seg (nil when absent).
func field(seg hl7.Segment, n int) []byte {
	b, _ := seg.Field(n)
	return b
}

// first is the first repetition of a field.
func (c *conv) first(seg hl7.Segment, n int) []byte {
	return piece(field(seg, n), c.d.Repetition, 1)
}

func (c *conv) fieldText(seg hl7.Segment, n int) string { return c.compText(c.first(seg, n), 1) }

// patientRef is the Patient every resource of the message is about; a
// message without PID gets an empty one, since FHIR requires the subject.
func (c *conv) patientRef() *obj {
	if c.patient == nil {
		c.patient = c.resource("Patient", "no-PID")
	}
	return c.patient.ref()
}

func (c *conv) encounterRef() *obj {
	if c.encounter == nil {
		return nil
	}
	return c.encounter.ref()
}
