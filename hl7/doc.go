// Package hl7 owns the HL7 v2 message: parsing (an index over the original
// bytes, never a copy), path access, escaping, editing and encoding that keep
// untouched bytes exact, batch splitting, charsets, and building and reading ACKs.
//
// Nothing here logs, and no error carries message content: errors say what
// was wrong and where (segment, field, byte offset), never a field's value.
package hl7
