// Package fhir converts HL7 v2 messages to FHIR R4 Bundles, following the
// HL7 V2-to-FHIR Implementation Guide's message, segment and data type
// maps. It knows nothing of NATS, sockets or config files: Convert takes a
// parsed message and returns the Bundle's JSON.
package fhir
