package fhir

import (
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

func testConv() *conv {
	return &conv{texter: texter{d: hl7.DefaultDelimiters}, loc: time.FixedZone("EST", -5*3600), byID: map[string]*entry{}, seed: []byte("t")}
}

func jsonOf(o *obj) string {
	if o == nil {
		return "null"
	}
	return string(o.appendJSON(nil))
}

// Each row names the IG map it checks: the data type map
// (ConceptMap datatype-xxx-to-yyy) and its row, or a vocabulary map.
func TestDataTypes(t *testing.T) {
	c := testConv()
	rows := []struct {
		ig, in, want string
		f            func([]byte) *obj
	}{
		{"XPN[HumanName] XPN.1 family, .2 given, .3 given, .4 suffix, .5 prefix, .6 suffix, .7 use (L→official)",
			"Everywoman^Eve^E^JR^DR^MD^L", `{"use":"official","family":"Everywoman","given":["Eve","E"],"prefix":["DR"],"suffix":["JR","MD"]}`, c.humanName},
		{"XPN[HumanName] XPN.7 M→maiden; XPN.10 validity range → period",
			"Smith^Ann^^^^^M^^^20200101&20201231", `{"use":"maiden","family":"Smith","given":["Ann"],"period":{"start":"2020-01-01","end":"2020-12-31"}}`, c.humanName},
		{"XPN[HumanName] XPN.2 given as written (a space does not split it)",
			"Smith^Mary Ann^J", `{"family":"Smith","given":["Mary Ann","J"]}`, c.humanName},
		{"XPN[HumanName] escapes decoded",
			`O\S\Brien^Pat`, `{"family":"O^Brien","given":["Pat"]}`, c.humanName},
		{"CX[Identifier] CX.1 value, CX.4 (HD.2 ISO) system urn:oid, CX.4.1 assigner, CX.5 type (table 0203)",
			"12345^^^HOSP&2.16.840.1.113883.19.5&ISO^MR", `{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:oid:2.16.840.1.113883.19.5","value":"12345","assigner":{"display":"HOSP"}}`, c.identifier},
		{"CX[Identifier] CX.4.1 namespace only → urn:id: system (our choice, docs/fhir.md)",
			"987^^^MPI^PI", `{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"PI"}]},"system":"urn:id:MPI","value":"987","assigner":{"display":"MPI"}}`, c.identifier},
		{"CX[Identifier] CX.7/CX.8 → period",
			"5^^^^^^20200101^20210101", `{"value":"5","period":{"start":"2020-01-01","end":"2021-01-01"}}`, c.identifier},
		{"XAD[Address] XAD.1 line, .2 line, .3 city, .4 state, .5 postalCode, .6 country, .7 H→home, .9 district",
			"153 Fernwood Dr.^Apt 2^Statesville^OH^35292^USA^H^^Iredell", `{"use":"home","line":["153 Fernwood Dr.","Apt 2"],"city":"Statesville","district":"Iredell","state":"OH","postalCode":"35292","country":"USA"}`, c.address},
		{"XAD[Address] XAD.7 M→type postal",
			"PO Box 1^^Town^^^^M", `{"type":"postal","line":["PO Box 1"],"city":"Town"}`, c.address},
		{"XTN[ContactPoint] XTN.2 PRN→home, XTN.3 PH→phone, XTN.6 area, XTN.7 local, XTN.8 extension",
			"^PRN^PH^^1^555^1234567^89", `{"system":"phone","value":"+1 (555) 1234567 ext. 89","use":"home"}`, func(b []byte) *obj { return c.contactPoint(b, "") }},
		{"XTN[ContactPoint] XTN.3 Internet → email, XTN.4 address",
			"^NET^Internet^pat@example.org", `{"system":"email","value":"pat@example.org"}`, func(b []byte) *obj { return c.contactPoint(b, "") }},
		{"XTN[ContactPoint] XTN.3 CP → mobile; XTN.1 when parts are absent",
			"(555)555-1212^^CP", `{"system":"phone","value":"(555)555-1212","use":"mobile"}`, func(b []byte) *obj { return c.contactPoint(b, "home") }},
		{"XTN[ContactPoint] XTN.3 FX → fax; field use (PID-14 → work)",
			"^WPN^FX^^^555^9998888", `{"system":"fax","value":"(555) 9998888","use":"work"}`, func(b []byte) *obj { return c.contactPoint(b, "work") }},
		{"CWE[CodeableConcept] CWE.1-3 coding (LN → http://loinc.org), CWE.4-6 alternate coding, CWE.9 text",
			"2345-7^Glucose^LN^GLU^Glucose lab^L^^^Glucose in serum", `{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"},{"system":"urn:id:L","code":"GLU","display":"Glucose lab"}],"text":"Glucose in serum"}`, c.codeableConcept},
		{"CWE[CodeableConcept] coding systems: SCT, I10, CVX, HL70005 → terminology.hl7.org v2-0005",
			"2106-3^White^HL70005^08^Hep B^CVX", `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0005","code":"2106-3","display":"White"},{"system":"http://hl7.org/fhir/sid/cvx","code":"08","display":"Hep B"}]}`, c.codeableConcept},
		{"CWE[CodeableConcept] CWE.7 version",
			"I10.1^Hypertension^I10C^^^^2019", `{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","version":"2019","code":"I10.1","display":"Hypertension"}]}`, c.codeableConcept},
		{"CWE[CodeableConcept] text without a code → text",
			"^Chest pain", `{"text":"Chest pain"}`, c.codeableConcept},
		{"CWE[CodeableConcept] SNOMED CT",
			"22298006^Myocardial infarction^SCT", `{"coding":[{"system":"http://snomed.info/sct","code":"22298006","display":"Myocardial infarction"}]}`, c.codeableConcept},
		{"ED[Attachment] ED.2/3 type and subtype → contentType, ED.4 Base64, ED.5 data",
			"LAB^AP^PDF^Base64^JVBERi0=", `{"contentType":"application/pdf","data":"JVBERi0="}`, c.attachment},
	}
	for _, r := range rows {
		if got := jsonOf(r.f([]byte(r.in))); got != r.want {
			t.Errorf("%s\n in   %s\n got  %s\n want %s", r.ig, r.in, got, r.want)
		}
	}
}

func TestDateTimes(t *testing.T) {
	c := testConv()
	rows := []struct{ ig, in, dateTime, instant, date string }{
		{"DTM[dateTime] year precision kept", "2026", "2026", "", "2026"},
		{"DTM[dateTime] month precision kept", "202601", "2026-01", "", "2026-01"},
		{"DTM[dateTime] day precision kept", "20260114", "2026-01-14", "", "2026-01-14"},
		{"DTM[dateTime] minutes: seconds added, the zone of the converter (EST)", "202601140815", "2026-01-14T08:15:00-05:00", "2026-01-14T08:15:00-05:00", "2026-01-14"},
		{"DTM[dateTime] offset kept", "20260114081530-0700", "2026-01-14T08:15:30-07:00", "2026-01-14T08:15:30-07:00", "2026-01-14"},
		{"DTM[dateTime] fraction kept", "20260114081530.1234+0100", "2026-01-14T08:15:30.1234+01:00", "2026-01-14T08:15:30.1234+01:00", "2026-01-14"},
		{"TS[dateTime] TS.1 only (TS.2 degree of precision ignored)", "20260114^D", "2026-01-14", "", "2026-01-14"},
		{"not a date: nothing", "2026-01-14", "", "", ""},
		{"impossible date: nothing", "20260230", "", "", ""},
		{"hours only: minutes and seconds added", "2026011408", "2026-01-14T08:00:00-05:00", "", "2026-01-14"},
	}
	for _, r := range rows {
		in := []byte(r.in)
		if got := c.dateTime(in); got != r.dateTime {
			t.Errorf("%s: dateTime(%s) = %q, want %q", r.ig, r.in, got, r.dateTime)
		}
		if got := c.instant(in); got != r.instant {
			t.Errorf("%s: instant(%s) = %q, want %q", r.ig, r.in, got, r.instant)
		}
		if got := c.date(in); got != r.date {
			t.Errorf("%s: date(%s) = %q, want %q", r.ig, r.in, got, r.date)
		}
	}
}

// OBX-5 by OBX-2: the IG's Segment OBX to Observation map, its OBX-5 rows.
func TestObservationValues(t *testing.T) {
	c := testConv()
	rows := []struct{ ig, vt, value, unit, want string }{
		{"OBX-5 NM → valueQuantity.value, OBX-6 (UCUM) → unit, system, code", "NM", "98", "mg/dL^^UCUM", `{"valueQuantity":{"value":98,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`},
		{"OBX-5 NM: decimal precision kept, leading + and zeros dropped", "NM", "+07.50", "", `{"valueQuantity":{"value":7.50}}`},
		{"OBX-6 without a coding system → unit text only (qty-3)", "NM", "5", "mmol/L", `{"valueQuantity":{"value":5,"unit":"mmol/L"}}`},
		{"OBX-5 NM holding a comparator → valueQuantity.comparator", "NM", "<0.5", "", `{"valueQuantity":{"value":0.5,"comparator":"<"}}`},
		{"OBX-5 NM that is not a number → valueString (nothing dropped)", "NM", "see note", "", `{"valueString":"see note"}`},
		{"OBX-5 SN comparator^num → valueQuantity with comparator", "SN", ">^10", "", `{"valueQuantity":{"value":10,"comparator":">"}}`},
		{"OBX-5 SN ^num1^-^num2 → valueRange", "SN", "^1^-^5", "mg^^UCUM", `{"valueRange":{"low":{"value":1,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},"high":{"value":5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}}`},
		{"OBX-5 SN ^num1^:^num2 → valueRatio", "SN", "^1^:^128", "", `{"valueRatio":{"numerator":{"value":1},"denominator":{"value":128}}}`},
		{"OBX-5 CWE → valueCodeableConcept", "CWE", "260373001^Detected^SCT", "", `{"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260373001","display":"Detected"}]}}`},
		{"OBX-5 CE → valueCodeableConcept", "CE", "POS^Positive^HL70078", "", `{"valueCodeableConcept":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0078","code":"POS","display":"Positive"}]}}`},
		{"OBX-5 ST → valueString", "ST", "Yellow", "", `{"valueString":"Yellow"}`},
		{"OBX-5 TX → valueString, repetitions as lines", "TX", "line one~line two", "", `{"valueString":"line one\nline two"}`},
		{"OBX-5 FT → valueString, \\.br\\ as a line break, escapes decoded", "FT", `A\.br\B \T\ C`, "", `{"valueString":"A\nB & C"}`},
		{"OBX-5 DT → valueDateTime", "DT", "20260114", "", `{"valueDateTime":"2026-01-14"}`},
		{"OBX-5 TS → valueDateTime", "TS", "202601140815-0500", "", `{"valueDateTime":"2026-01-14T08:15:00-05:00"}`},
		{"OBX-5 TM → valueTime", "TM", "0815", "", `{"valueTime":"08:15:00"}`},
		{"OBX-5 NA → valueSampledData (origin 0, period 0: docs/fhir.md)", "NA", "1^2.5^3", "", `{"valueSampledData":{"origin":{"value":0},"period":0,"dimensions":1,"data":"1 2.5 3"}}`},
	}
	for _, r := range rows {
		o := &obj{}
		c.observationValue(o, r.vt, []byte(r.value), []byte(r.unit))
		if got := jsonOf(o); got != r.want {
			t.Errorf("%s\n got  %s\n want %s", r.ig, got, r.want)
		}
	}
}

// Vocabulary maps: the IG's ConceptMaps from HL7 tables.
func TestTables(t *testing.T) {
	rows := []struct {
		ig   string
		m    map[string]string
		in   string
		want string
	}{
		{"table-hl70001-to-administrative-gender F", genderMap, "F", "female"},
		{"table-hl70001-to-administrative-gender M", genderMap, "M", "male"},
		{"table-hl70001-to-administrative-gender A", genderMap, "A", "other"},
		{"table-hl70001-to-administrative-gender U", genderMap, "U", "unknown"},
		{"table-hl70085-to-observation-status F", observationStatusMap, "F", "final"},
		{"table-hl70085-to-observation-status C", observationStatusMap, "C", "corrected"},
		{"table-hl70085-to-observation-status P", observationStatusMap, "P", "preliminary"},
		{"table-hl70085-to-observation-status W", observationStatusMap, "W", "entered-in-error"},
		{"table-hl70123-to-diagnostic-report-status F", reportStatusMap, "F", "final"},
		{"table-hl70123-to-diagnostic-report-status P", reportStatusMap, "P", "preliminary"},
		{"table-hl70123-to-diagnostic-report-status X", reportStatusMap, "X", "cancelled"},
		{"table-hl70038-to-request-status CM", orderStatusMap, "CM", "completed"},
		{"table-hl70038-to-request-status IP", orderStatusMap, "IP", "active"},
		{"table-hl70200-to-name-use L", nameUseMap, "L", "official"},
		{"table-hl70190-to-address-use H", addressUseMap, "H", "home"},
		{"table-hl70201-to-contact-point-use WPN", telecomUseMap, "WPN", "work"},
		{"table-hl70202-to-contact-point-system FX", telecomSystemMap, "FX", "fax"},
		{"table-hl70127-to-allergy-intolerance-category FA", allergyCategoryMap, "FA", "food"},
		{"table-hl70128-to-allergy-intolerance-criticality SV", allergyCriticalityMap, "SV", "high"},
		{"table-hl70322-to-immunization-status RE", immunizationStatusMap, "RE", "not-done"},
		{"table-hl70063-to-subscriber-relationship SEL", subscriberRelMap, "SEL", "self"},
	}
	for _, r := range rows {
		if got := r.m[r.in]; got != r.want {
			t.Errorf("%s: %s → %q, want %q", r.ig, r.in, got, r.want)
		}
	}
	for code, want := range map[string]string{"E": "EMER", "I": "IMP", "O": "AMB", "P": "PRENC"} {
		if got := patientClassMap[code][0]; got != want {
			t.Errorf("table-hl70004-to-encounter-class %s → %s, want %s", code, got, want)
		}
	}
}
