// Package store owns where messages are kept: NATS JetStream, embedded or
// an external cluster, its streams (HL7_IN, HL7_OUT, HL7_DLQ, HL7_EVENTS,
// HL7_AUDIT) and the HL7_STATE bucket, the committers and the group syncer
// behind durability fsync, the janitor of delivered copies, the keeper
// that brings the embedded store back after a full disk, and the audit's
// disk reserve. Code above it cannot tell embedded from external.
package store
