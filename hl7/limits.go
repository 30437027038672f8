package hl7

// Limits bound what a parse may index, so hostile input costs at most a
// small multiple of its own size. Zero fields take the defaults.
type Limits struct {
	MaxMessageBytes     int // whole message or batch, after BOM removal
	MaxSegments         int // per message
	MaxFieldsPerSegment int
	MaxRepetitions      int // per field
}

// DefaultLimits are generous: a 16 MiB message (base64 PDFs in OBX-5),
// 10,000 segments, 1,000 fields a segment and 10,000 repetitions a field.
// The largest real message we know of is a 111 KB ORU with 842 segments.
var DefaultLimits = Limits{
	MaxMessageBytes:     16 << 20,
	MaxSegments:         10_000,
	MaxFieldsPerSegment: 1_000,
	MaxRepetitions:      10_000,
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultLimits.MaxMessageBytes
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = DefaultLimits.MaxSegments
	}
	if l.MaxFieldsPerSegment <= 0 {
		l.MaxFieldsPerSegment = DefaultLimits.MaxFieldsPerSegment
	}
	if l.MaxRepetitions <= 0 {
		l.MaxRepetitions = DefaultLimits.MaxRepetitions
	}
	return l
}
