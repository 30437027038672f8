// Package delivery owns getting routed copies to downstream systems: a
// Worker per destination reads its queue in HL7_OUT, retries with
// backoff in order, and parks what cannot be delivered in HL7_DLQ; the
// destination types (mllp, http, file, sftp, postgres, fhir) are
// Deliverers, which know nothing of NATS.
package delivery
