// Names of common segments' fields (HL7 v2.5), for the message page:
// FIELDS.PID[5] is "Patient Name". A field not listed shows its path only.
"use strict";
const FIELDS = {
  MSH: [, "Field Separator", "Encoding Characters", "Sending Application", "Sending Facility", "Receiving Application",
    "Receiving Facility", "Date/Time of Message", "Security", "Message Type", "Message Control ID", "Processing ID",
    "Version ID", "Sequence Number", "Continuation Pointer", "Accept Acknowledgment Type", "Application Acknowledgment Type",
    "Country Code", "Character Set", "Principal Language of Message"],
  EVN: [, "Event Type Code", "Recorded Date/Time", "Date/Time Planned Event", "Event Reason Code", "Operator ID", "Event Occurred"],
  PID: [, "Set ID", "Patient ID", "Patient Identifier List", "Alternate Patient ID", "Patient Name", "Mother's Maiden Name",
    "Date/Time of Birth", "Administrative Sex", "Patient Alias", "Race", "Patient Address", "County Code", "Phone Number - Home",
    "Phone Number - Business", "Primary Language", "Marital Status", "Religion", "Patient Account Number", "SSN Number",
    "Driver's License Number", "Mother's Identifier", "Ethnic Group", "Birth Place", "Multiple Birth Indicator",
    "Birth Order", "Citizenship", "Veterans Military Status", "Nationality", "Patient Death Date and Time", "Patient Death Indicator"],
  PV1: [, "Set ID", "Patient Class", "Assigned Patient Location", "Admission Type", "Preadmit Number", "Prior Patient Location",
    "Attending Doctor", "Referring Doctor", "Consulting Doctor", "Hospital Service", "Temporary Location", "Preadmit Test Indicator",
    "Re-admission Indicator", "Admit Source", "Ambulatory Status", "VIP Indicator", "Admitting Doctor", "Patient Type", "Visit Number",
    "Financial Class", "Charge Price Indicator", "Courtesy Code", "Credit Rating", "Contract Code", "Contract Effective Date",
    "Contract Amount", "Contract Period", "Interest Code", "Transfer to Bad Debt Code", "Transfer to Bad Debt Date",
    "Bad Debt Agency Code", "Bad Debt Transfer Amount", "Bad Debt Recovery Amount", "Delete Account Indicator",
    "Delete Account Date", "Discharge Disposition", "Discharged to Location", "Diet Type", "Servicing Facility", "Bed Status",
    "Account Status", "Pending Location", "Prior Temporary Location", "Admit Date/Time", "Discharge Date/Time",
    "Current Patient Balance", "Total Charges", "Total Adjustments", "Total Payments", "Alternate Visit ID", "Visit Indicator",
    "Other Healthcare Provider"],
  NK1: [, "Set ID", "Name", "Relationship", "Address", "Phone Number", "Business Phone Number", "Contact Role"],
  ORC: [, "Order Control", "Placer Order Number", "Filler Order Number", "Placer Group Number", "Order Status", "Response Flag",
    "Quantity/Timing", "Parent", "Date/Time of Transaction", "Entered By", "Verified By", "Ordering Provider"],
  OBR: [, "Set ID", "Placer Order Number", "Filler Order Number", "Universal Service Identifier", "Priority", "Requested Date/Time",
    "Observation Date/Time", "Observation End Date/Time", "Collection Volume", "Collector Identifier", "Specimen Action Code",
    "Danger Code", "Relevant Clinical Information", "Specimen Received Date/Time", "Specimen Source", "Ordering Provider",
    "Order Callback Phone Number", "Placer Field 1", "Placer Field 2", "Filler Field 1", "Filler Field 2",
    "Results Rpt/Status Chng - Date/Time", "Charge to Practice", "Diagnostic Serv Sect ID", "Result Status"],
  OBX: [, "Set ID", "Value Type", "Observation Identifier", "Observation Sub-ID", "Observation Value", "Units", "References Range",
    "Abnormal Flags", "Probability", "Nature of Abnormal Test", "Observation Result Status", "Effective Date of Reference Range",
    "User Defined Access Checks", "Date/Time of the Observation", "Producer's ID", "Responsible Observer", "Observation Method",
    "Equipment Instance Identifier", "Date/Time of the Analysis"],
  NTE: [, "Set ID", "Source of Comment", "Comment", "Comment Type"],
  AL1: [, "Set ID", "Allergen Type Code", "Allergen Code/Mnemonic/Description", "Allergy Severity Code", "Allergy Reaction Code", "Identification Date"],
  DG1: [, "Set ID", "Diagnosis Coding Method", "Diagnosis Code", "Diagnosis Description", "Diagnosis Date/Time", "Diagnosis Type"],
  IN1: [, "Set ID", "Insurance Plan ID", "Insurance Company ID", "Insurance Company Name", "Insurance Company Address"],
  MSA: [, "Acknowledgment Code", "Message Control ID", "Text Message", "Expected Sequence Number", "Delayed Acknowledgment Type", "Error Condition"],
  ERR: [, "Error Code and Location", "Error Location", "HL7 Error Code", "Severity", "Application Error Code"],
  SPM: [, "Set ID", "Specimen ID", "Specimen Parent IDs", "Specimen Type"],
  RXA: [, "Give Sub-ID Counter", "Administration Sub-ID Counter", "Date/Time Start of Administration", "Date/Time End of Administration",
    "Administered Code", "Administered Amount", "Administered Units"],
  TXA: [, "Set ID", "Document Type", "Document Content Presentation", "Activity Date/Time"],
  SCH: [, "Placer Appointment ID", "Filler Appointment ID"],
};

// fieldName names a path such as "PID-5.1" ("Patient Name") or "OBX[7]-3"
// ("Observation Identifier"), or "".
function fieldName(path) {
  const m = /^([A-Z0-9]{3})(?:\[\d+\])?-(\d+)/.exec(path); // PID-5.1, OBX[7]-3: every repetition of a segment
  if (!m) return "";
  const names = FIELDS[m[1]];
  return (names && names[Number(m[2])]) || "";
}
