package fhir

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
)

type bundleDoc struct {
	Type      string
	Timestamp string
	Entry     []struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
		Request  struct{ Method, URL string }
	}
}

func convertFile(t *testing.T, file string, o Options) (bundleDoc, []byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if o.TimeZone == nil {
		o.TimeZone = newYork
	}
	out, err := ConvertBytes(data, o)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, file, out)
	var b bundleDoc
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	return b, out
}

// of lists the Bundle's resources of a type.
func (b bundleDoc) of(typ string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == typ {
			out = append(out, e.Resource)
		}
	}
	return out
}

func (b bundleDoc) types() string {
	var s []string
	for _, e := range b.Entry {
		s = append(s, e.Resource["resourceType"].(string))
	}
	return strings.Join(s, " ")
}

// at reads a path such as "name.0.family" from decoded JSON, as text.
func at(v any, path string) string {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func expect(t *testing.T, what string, v any, path, want string) {
	t.Helper()
	if got := at(v, path); got != want {
		t.Errorf("%s %s = %s, want %s", what, path, got, want)
	}
}

func TestADTA01(t *testing.T) {
	b, _ := convertFile(t, "testdata/adt_a01_full.hl7", Options{})
	if want := "MessageHeader Organization Organization Patient RelatedPerson Encounter Practitioner Location Organization Observation AllergyIntolerance Condition Practitioner Organization Coverage Practitioner Provenance"; b.types() != want {
		t.Errorf("resources %s\nwant %s", b.types(), want)
	}
	if b.Type != "transaction" || b.Timestamp != "2026-01-14T08:15:30-05:00" {
		t.Errorf("type %s timestamp %s", b.Type, b.Timestamp)
	}
	p := b.of("Patient")[0]
	expect(t, "PID-3", p, "identifier.0.system", "urn:oid:2.16.840.1.113883.19.1")
	expect(t, "PID-3", p, "identifier.0.value", "4455")
	expect(t, "PID-3 second repetition", p, "identifier.1.system", "urn:id:SSA")
	expect(t, "PID-5", p, "name.0.family", "Doe")
	expect(t, "PID-5", p, "name.0.given", `["Jane","Q"]`)
	expect(t, "PID-5 M", p, "name.1.use", "maiden")
	expect(t, "PID-7", p, "birthDate", "1980-01-02")
	expect(t, "PID-8", p, "gender", "female")
	expect(t, "PID-11", p, "address.0.city", "Springfield")
	expect(t, "PID-13", p, "telecom.0.value", "+1 (217) 5551234")
	expect(t, "PID-13 e-mail", p, "telecom.1.system", "email")
	expect(t, "PID-14", p, "telecom.2.use", "work")
	expect(t, "PID-16", p, "maritalStatus.coding.0.code", "M")
	expect(t, "PID-30", p, "deceasedBoolean", "false")
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == "Patient" && e.Request.URL != "Patient?identifier=urn%3Aoid%3A2.16.840.1.113883.19.1|4455" {
			t.Errorf("Patient is written by %s %s; want a conditional update on its MR", e.Request.Method, e.Request.URL)
		}
	}
	enc := b.of("Encounter")[0]
	expect(t, "PV1-2", enc, "class.code", "IMP")
	expect(t, "A01", enc, "status", "in-progress")
	expect(t, "PV1-44", enc, "period.start", "2026-01-14T08:00:00-05:00")
	expect(t, "PV1-19", enc, "identifier.0.value", "V100")
	expect(t, "PV1-7", enc, "participant.0.type.0.coding.0.code", "ATND")
	expect(t, "PV1-17 same doctor", enc, "participant.1.type.0.coding.0.code", "ADM")
	expect(t, "PV2-3", enc, "reasonCode.0.text", "")
	expect(t, "PV2-3", enc, "reasonCode.0.coding.0.code", "CP")
	expect(t, "DG1", enc, "diagnosis.0.condition.reference", "urn:uuid:"+at(b.of("Condition")[0], "id"))
	if n := strings.Count(b.types(), "Practitioner"); n != 3 { // PV1-7 = PV1-17, DG1-16 (no NPI), EVN-5
		t.Errorf("PV1-7 and PV1-17 name one doctor: %d Practitioners, want 3", n)
	}
	expect(t, "XCN", b.of("Practitioner")[0], "identifier.0.system", "urn:oid:2.16.840.1.113883.4.6")
	expect(t, "NK1-3", b.of("RelatedPerson")[0], "relationship.0.coding.0.code", "SPO")
	al := b.of("AllergyIntolerance")[0]
	expect(t, "AL1-2", al, "category.0", "medication")
	expect(t, "AL1-4", al, "criticality", "high")
	expect(t, "AL1-5", al, "reaction.0.manifestation.1.text", "Anaphylaxis")
	expect(t, "DG1-3", b.of("Condition")[0], "code.coding.0.system", "http://hl7.org/fhir/sid/icd-10-cm")
	cov := b.of("Coverage")[0]
	expect(t, "IN1-17", cov, "relationship.coding.0.code", "self")
	expect(t, "IN1-36", cov, "identifier.0.value", "POL123")
	expect(t, "IN1-3/4", b.of("Organization")[3], "name", "Acme Insurance")
	for _, e := range b.Entry {
		if at(e.Resource, "name") == "Acme Insurance" && at(cov, "payor.0.reference") != e.FullURL {
			t.Errorf("Coverage.payor is %s, not the insurer %s", at(cov, "payor.0.reference"), e.FullURL)
		}
	}
	obs := b.of("Observation")[0]
	expect(t, "OBX-5", obs, "valueQuantity.value", "170")
	expect(t, "OBX-6", obs, "valueQuantity.code", "cm")
	prov := b.of("Provenance")[0]
	expect(t, "EVN-2", prov, "recorded", "2026-01-14T08:15:00-05:00")
	expect(t, "EVN-6", prov, "occurredDateTime", "2026-01-14T08:00:00-05:00")
	expect(t, "EVN-5", prov, "agent.0.who.reference", "urn:uuid:"+newID("Practitioner", "", "U123", "Clerk", "Carl", ""))
}

// A resend converts to the same ids, so a server updates, never adds.
func TestResendSameIDs(t *testing.T) {
	_, first := convertFile(t, "testdata/adt_a01_full.hl7", Options{})
	data, _ := os.ReadFile("testdata/adt_a01_full.hl7")
	resent := strings.Replace(string(data), "20260114081530-0500", "20260114091530-0500", 1) // MSH-7 differs on a resend
	m, err := hl7.Parse([]byte(resent))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Convert(m, Options{TimeZone: newYork})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(b []byte) string {
		return strings.Replace(string(b), "2026-01-14T09:15:30-05:00", "2026-01-14T08:15:30-05:00", 1)
	}
	if strip(second) != string(first) {
		t.Errorf("a resend converted differently:\n%s\n%s", first, second)
	}
	other := strings.Replace(string(data), "ADT0001", "ADT0002", 1)
	third, _ := ConvertBytes([]byte(other), Options{TimeZone: newYork})
	if firstID(first, "Encounter") == firstID(third, "Encounter") {
		t.Error("another message gave its Encounter the same id")
	}
	if firstID(first, "Practitioner") != firstID(third, "Practitioner") {
		t.Error("the same doctor in another message is a different Practitioner")
	}
}

func firstID(bundle []byte, typ string) string {
	var b bundleDoc
	_ = json.Unmarshal(bundle, &b)
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == typ {
			return e.FullURL
		}
	}
	return ""
}

func TestCollectionBundle(t *testing.T) {
	b, _ := convertFile(t, "testdata/adt_a01_full.hl7", Options{Bundle: "collection"})
	if b.Type != "collection" {
		t.Fatalf("type %s", b.Type)
	}
	for _, e := range b.Entry {
		if e.Request.Method != "" || e.FullURL != "urn:uuid:"+at(e.Resource, "id") {
			t.Errorf("%s: request %q, fullUrl %s, id %s", e.Resource["resourceType"], e.Request.Method, e.FullURL, at(e.Resource, "id"))
		}
	}
}

func TestADTA40Merge(t *testing.T) {
	b, _ := convertFile(t, "testdata/adt_a40_merge.hl7", Options{})
	ps := b.of("Patient")
	if len(ps) != 2 {
		t.Fatalf("%d Patients", len(ps))
	}
	expect(t, "surviving", ps[0], "link.0.type", "replaces")
	expect(t, "MRG-1", ps[1], "identifier.0.value", "7788")
	expect(t, "merged", ps[1], "active", "false")
	expect(t, "merged", ps[1], "link.0.type", "replaced-by")
}

func TestORU(t *testing.T) {
	b, _ := convertFile(t, "../hl7/testdata/oru_r01.hl7", Options{})
	dr := b.of("DiagnosticReport")[0]
	expect(t, "OBR-25", dr, "status", "final")
	if n := len(dr["result"].([]any)); n != len(b.of("Observation")) {
		t.Errorf("DiagnosticReport lists %d results of %d Observations", n, len(b.of("Observation")))
	}
	obs := b.of("Observation")
	expect(t, "OBX-3 LN", obs[1], "code.coding.0.system", "http://loinc.org")
	expect(t, "OBX-3", obs[1], "code.coding.0.code", "2345-7")
	expect(t, "OBX-5 NM", obs[1], "valueQuantity.value", "98")
	expect(t, "OBX-6", obs[1], "valueQuantity.unit", "mg/dL")
	expect(t, "OBX-8", obs[1], "interpretation.0.coding.0.code", "N")
	expect(t, "OBX-14", obs[1], "effectiveDateTime", "2026-01-14T09:00:00-05:00")
	expect(t, "OBX-5 TX with \\.br\\ and \\T\\", obs[6], "valueString", "Specimen slightly hemolyzed\nResult verified & released")
	expect(t, "OBR", b.of("ServiceRequest")[0], "status", "completed")
}

func TestVXU(t *testing.T) {
	b, _ := convertFile(t, "testdata/vxu_v04.hl7", Options{})
	imm := b.of("Immunization")[0]
	expect(t, "RXA-5", imm, "vaccineCode.coding.0.system", "http://hl7.org/fhir/sid/cvx")
	expect(t, "RXA-5", imm, "vaccineCode.coding.0.code", "08")
	expect(t, "RXA-3", imm, "occurrenceDateTime", "2026-01-10")
	expect(t, "RXA-6/7", imm, "doseQuantity.value", "0.5")
	expect(t, "RXA-9", imm, "primarySource", "true")
	expect(t, "RXA-15", imm, "lotNumber", "LOT42")
	expect(t, "RXA-20", imm, "status", "completed")
	expect(t, "RXR-2", imm, "site.coding.0.code", "LD")
	expect(t, "ORC-3", imm, "identifier.0.value", "IZ-998")
	expect(t, "RXA-17", b.of("Organization")[len(b.of("Organization"))-1], "identifier.0.system", "http://hl7.org/fhir/sid/mvx")
	expect(t, "OBX partOf", b.of("Observation")[0], "partOf.0.reference", "urn:uuid:"+idOf(b, "Immunization"))
}

func idOf(b bundleDoc, typ string) string {
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == typ {
			return strings.TrimPrefix(e.FullURL, "urn:uuid:")
		}
	}
	return ""
}

func TestOrders(t *testing.T) {
	b, _ := convertFile(t, "testdata/orm_o01.hl7", Options{})
	sr := b.of("ServiceRequest")
	if len(sr) != 1 {
		t.Fatalf("%d ServiceRequests from one ORC+OBR", len(sr))
	}
	expect(t, "ORC-1 NW", sr[0], "status", "active")
	expect(t, "ORC-2", sr[0], "identifier.0.value", "ORD100")
	expect(t, "OBR-4", sr[0], "code.coding.0.code", "2345-7")
	expect(t, "ORC-12", sr[0], "requester.reference", "urn:uuid:"+idOf(b, "Practitioner"))
	expect(t, "NTE", sr[0], "note.0.text", "Fasting sample")
	b, _ = convertFile(t, "testdata/oml_o21.hl7", Options{})
	expect(t, "SPM", b.of("ServiceRequest")[0], "specimen.0.reference", "urn:uuid:"+idOf(b, "Specimen"))
	expect(t, "SPM-17", b.of("Specimen")[0], "collection.collectedDateTime", "2026-01-14T10:45:00-05:00")
	expect(t, "SPM-4", b.of("Specimen")[0], "type.coding.0.code", "119297000")
}

func TestMDM(t *testing.T) {
	b, _ := convertFile(t, "testdata/mdm_t02.hl7", Options{})
	docs := b.of("DocumentReference")
	if len(docs) != 1 || len(b.of("Observation")) != 0 {
		t.Fatalf("%d DocumentReferences, %d Observations", len(docs), len(b.of("Observation")))
	}
	expect(t, "TXA-12", docs[0], "masterIdentifier.value", "DOC-55")
	expect(t, "TXA-17 LA", docs[0], "docStatus", "final")
	expect(t, "TXA-19 AV", docs[0], "status", "current")
	expect(t, "OBX TX", docs[0], "content.0.attachment.data", base64Std("Patient discharged in good condition.\nFollow up in two weeks."))
}

func TestSIU(t *testing.T) {
	b, _ := convertFile(t, "testdata/siu_s12.hl7", Options{})
	a := b.of("Appointment")[0]
	expect(t, "SCH-25", a, "status", "booked")
	expect(t, "SCH-11.4", a, "start", "2026-01-20T10:00:00-05:00")
	expect(t, "SCH-11.5", a, "end", "2026-01-20T10:30:00-05:00")
	expect(t, "SCH-9/10", a, "minutesDuration", "30")
	if n := len(a["participant"].([]any)); n != 3 {
		t.Errorf("%d participants, want location, practitioner and patient", n)
	}
}

func TestUnsupportedType(t *testing.T) {
	_, err := ConvertBytes([]byte("MSH|^~\\&|A|B|C|D|20260101||QRY^Q01|1|P|2.3\r"), Options{})
	if ue, ok := err.(*UnsupportedError); !ok || ue.Type != "QRY^Q01" {
		t.Fatalf("err = %v", err)
	}
}

// Text in the message's charset (MSH-18) reaches the Bundle as UTF-8.
func TestCharset(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5|||||| 8859/1\rPID|1||1^^^H^MR||M\xfcller^J\xf6rg\r"
	out, err := ConvertBytes([]byte(msg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"family":"Müller","given":["Jörg"]`) {
		t.Errorf("8859/1 not decoded: %s", out)
	}
}

// Converters are pooled: conversions on several goroutines at once give
// what each gives alone (run under -race in .ci/run).
func TestConcurrentConversions(t *testing.T) {
	files := []string{"testdata/adt_a01_full.hl7", "testdata/vxu_v04.hl7", "testdata/mdm_t02.hl7", "../hl7/testdata/oru_r01.hl7"}
	want := map[string]string{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		out, err := ConvertBytes(data, Options{TimeZone: newYork})
		if err != nil {
			t.Fatal(err)
		}
		want[f] = string(out)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				f := files[(g+i)%len(files)]
				data, _ := os.ReadFile(f)
				out, err := ConvertBytes(data, Options{TimeZone: newYork})
				if err != nil || string(out) != want[f] {
					errs <- fmt.Errorf("%s differs when converted alongside others (err %v)", f, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
