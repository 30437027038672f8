package fhir

import (
	"net/url"
	"strings"
)

// codingSystems maps HL7 table 0396 coding system names to the URIs FHIR
// uses for them (terminology.hl7.org's "v2 to FHIR code system" list). A
// name not here keeps its identity as urn:id:<name>; HL7nnnn and 99zzz
// local tables are handled in systemURI.
var codingSystems = map[string]string{
	"LN":      "http://loinc.org",
	"LOINC":   "http://loinc.org",
	"SCT":     "http://snomed.info/sct",
	"SNM":     "http://snomed.info/sct",
	"SNOMED":  "http://snomed.info/sct",
	"SNM3":    "http://snomed.info/sct",
	"I10":     "http://hl7.org/fhir/sid/icd-10",
	"I10C":    "http://hl7.org/fhir/sid/icd-10-cm",
	"ICD10":   "http://hl7.org/fhir/sid/icd-10",
	"I10P":    "http://www.cms.gov/Medicare/Coding/ICD10",
	"I9":      "http://hl7.org/fhir/sid/icd-9-cm",
	"I9C":     "http://hl7.org/fhir/sid/icd-9-cm",
	"ICD9":    "http://hl7.org/fhir/sid/icd-9-cm",
	"CVX":     "http://hl7.org/fhir/sid/cvx",
	"MVX":     "http://hl7.org/fhir/sid/mvx",
	"UCUM":    "http://unitsofmeasure.org",
	"NDC":     "http://hl7.org/fhir/sid/ndc",
	"RXNORM":  "http://www.nlm.nih.gov/research/umls/rxnorm",
	"RXN":     "http://www.nlm.nih.gov/research/umls/rxnorm",
	"C4":      "http://www.ama-assn.org/go/cpt",
	"CPT":     "http://www.ama-assn.org/go/cpt",
	"C5":      "http://www.ama-assn.org/go/cpt",
	"HCPCS":   "urn:oid:2.16.840.1.113883.6.285",
	"HCPT":    "urn:oid:2.16.840.1.113883.6.285",
	"CDCREC":  "urn:oid:2.16.840.1.113883.6.238",
	"NCIT":    "http://ncimeta.nci.nih.gov",
	"UMLS":    "http://www.nlm.nih.gov/research/umls",
	"NUCC":    "http://nucc.org/provider-taxonomy",
	"ISO+":    "urn:iso:std:iso:11073:10101",
	"ISO3166": "urn:iso:std:iso:3166",
	"NPI":     "http://hl7.org/fhir/sid/us-npi",
	"SSN":     "http://hl7.org/fhir/sid/us-ssn",
	"DCM":     "http://dicom.nema.org/resources/ontology/DCM",
	"ATC":     "http://www.whocc.no/atc",
}

// systemURI is the URI of a coding system named in a CWE's third
// component: a well-known one by its URI, HL7nnnn as terminology.hl7.org's
// v2-nnnn code system, anything else as urn:id:<name>.
func systemURI(name string) string {
	if name == "" {
		return ""
	}
	if u, ok := codingSystems[strings.ToUpper(name)]; ok {
		return u
	}
	if len(name) == 7 && strings.HasPrefix(strings.ToUpper(name), "HL7") && allDigits(name[3:]) {
		return v2Table(name[3:])
	}
	if strings.Contains(name, ":") && !strings.ContainsAny(name, " \t") { // already a URI or an OID URN
		return name
	}
	return "urn:id:" + url.PathEscape(name)
}

// v2Table is the URI of HL7 v2 table nnnn's code system.
func v2Table(n string) string { return "http://terminology.hl7.org/CodeSystem/v2-" + n }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

const (
	v3ActCode          = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	v3NullFlavor       = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	v3ParticipantType  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	v3Interpretation   = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	v3MaritalStatus    = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
	v3RoleCode         = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	extDataAbsent      = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	extBirthTime       = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
	extMothersMaiden   = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
	sysAllergyCategory = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
)

// The IG's ConceptMaps from HL7 tables to FHIR value sets, keyed by the
// v2 code. A code not in a map maps to nothing: the IG gives no target.
var (
	// table-hl70001-to-administrative-gender
	genderMap = map[string]string{"F": "female", "M": "male", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
	// table-hl70004-to-v3-ActCode (PatientClass): code and display.
	patientClassMap = map[string][2]string{
		"E": {"EMER", "emergency"}, "I": {"IMP", "inpatient encounter"}, "O": {"AMB", "ambulatory"},
		"P": {"PRENC", "pre-admission"}, "R": {"IMP", "inpatient encounter"}, "B": {"IMP", "inpatient encounter"},
	}
	// table-hl70002-to-v3-MaritalStatus
	maritalMap = map[string]string{"A": "L", "D": "D", "M": "M", "S": "S", "W": "W", "C": "C", "G": "T", "P": "T", "R": "T",
		"E": "L", "N": "A", "I": "I", "B": "U", "U": "UNK", "O": "OTH", "T": "UNK"}
	// table-hl70200-to-name-use
	nameUseMap = map[string]string{"A": "usual", "B": "old", "C": "official", "D": "usual", "I": "usual", "L": "official",
		"M": "maiden", "N": "nickname", "NB": "old", "P": "official", "R": "official", "S": "anonymous", "T": "temp", "U": "old"}
	// table-hl70190-to-address-use and address-type
	addressUseMap  = map[string]string{"B": "work", "BI": "billing", "C": "temp", "H": "home", "O": "work", "BDL": "old", "BR": "old", "RH": "old"}
	addressTypeMap = map[string]string{"M": "postal", "SH": "physical", "BA": "postal"}
	// table-hl70201-to-contact-point-use
	telecomUseMap = map[string]string{"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "PRS": "mobile", "EMR": "temp"}
	// table-hl70202-to-contact-point-system
	telecomSystemMap = map[string]string{"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "Internet": "email",
		"X.400": "email", "MD": "other", "TDD": "other", "TTY": "other", "SAT": "phone"}
	// table-hl70085-to-observation-status
	observationStatusMap = map[string]string{"C": "corrected", "D": "entered-in-error", "F": "final", "I": "registered",
		"P": "preliminary", "R": "preliminary", "S": "preliminary", "U": "final", "W": "entered-in-error", "X": "cancelled", "A": "amended"}
	// table-hl70123-to-diagnostic-report-status
	reportStatusMap = map[string]string{"A": "partial", "C": "corrected", "F": "final", "I": "registered", "O": "registered",
		"P": "preliminary", "R": "partial", "S": "partial", "X": "cancelled", "Y": "final", "Z": "final"}
	// table-hl70038-to-request-status
	orderStatusMap = map[string]string{"A": "active", "CA": "revoked", "CM": "completed", "DC": "revoked", "ER": "entered-in-error",
		"HD": "on-hold", "IP": "active", "RP": "revoked", "SC": "active"}
	// table-hl70119-to-request-status (ORC-1 when ORC-5 is empty)
	orderControlMap = map[string]string{"NW": "active", "CA": "revoked", "DC": "revoked", "HD": "on-hold", "RL": "active",
		"OC": "revoked", "OD": "revoked", "OH": "on-hold", "CR": "revoked", "SC": "active", "XO": "active", "XX": "active"}
	// table-hl70078-to-v3-ObservationInterpretation (the codes are shared)
	interpretationMap = map[string]string{"<": "<", ">": ">", "A": "A", "AA": "AA", "B": "B", "D": "D", "H": "H", "HH": "HH",
		"I": "I", "L": "L", "LL": "LL", "MS": "MS", "N": "N", "R": "R", "S": "S", "U": "U", "VS": "VS", "W": "W", "NEG": "NEG", "POS": "POS",
		"IND": "IND", "E": "E", "EX": "EX"}
	// table-hl70127-to-allergy-intolerance-category
	allergyCategoryMap = map[string]string{"DA": "medication", "FA": "food", "EA": "environment", "MA": "medication",
		"AA": "environment", "PA": "environment", "LA": "environment", "MC": "medication"}
	// table-hl70128-to-allergy-intolerance-criticality
	allergyCriticalityMap = map[string]string{"SV": "high", "MO": "low", "MI": "low", "U": "unable-to-assess"}
	// table-hl70063-to-subscriber-relationship (Coverage.relationship)
	subscriberRelMap = map[string]string{"SEL": "self", "SPO": "spouse", "DOM": "common", "CHD": "child", "EMC": "child",
		"FCH": "child", "GCH": "child", "NCH": "child", "SCH": "child", "STP": "child", "OTH": "other", "PAR": "other"}
	// table-hl70322-to-immunization-status (RXA-20)
	immunizationStatusMap = map[string]string{"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}
	// table-hl70271-to-composition-status (TXA-17)
	docStatusMap = map[string]string{"AU": "final", "DI": "preliminary", "DO": "final", "IN": "preliminary",
		"IP": "preliminary", "LA": "final", "PA": "preliminary"}
	// table-hl70275-to-document-reference-status (TXA-19)
	docAvailabilityMap = map[string]string{"AV": "current", "CA": "entered-in-error", "OB": "superseded", "UN": "current", "AR": "current", "PU": "current"}
	// table-hl70278-to-appointment-status (SCH-25)
	appointmentStatusMap = map[string]string{"Booked": "booked", "Cancelled": "cancelled", "Complete": "fulfilled",
		"Dc": "cancelled", "Deleted": "entered-in-error", "Noshow": "noshow", "Overbook": "booked", "Pending": "pending",
		"Started": "arrived", "Blocked": "booked", "Waitlist": "waitlist"}
)
