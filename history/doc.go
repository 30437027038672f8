// Package history is what people see of a message after its ACK: the
// search index (an embedded SQLite file under data_dir, derived from
// HL7_IN, HL7_EVENTS, HL7_DLQ and HL7_AUDIT and rebuilt from them at any
// time), each message's journey, and the operations on stored messages:
// show, replay, dead letters, purge, pause and resume.
package history
