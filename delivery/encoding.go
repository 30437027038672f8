package delivery

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/fhir"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/script"
)

// Encoding turns a message as stored (ER7) into what a destination
// receives. nil: the stored bytes as they are.
type Encoding func(m Message) ([]byte, error)

// NewEncoding returns the encoding a destination asks for: its encoder
// (enc, compiled from d.Encoder, and/or its velocity text), "json" (the
// mapping of hl7.EncodeJSON), "fhir" (a FHIR R4 Bundle, package fhir), or
// ER7 with its segments ended by "cr", "lf" or "crlf"; nil for ER7 as
// received.
func NewEncoding(d config.DestinationConfig, enc *script.Script) (Encoding, error) {
	if d.Encoder != nil {
		return encoderEncoding(d, enc), nil
	}
	encoding, terminator := d.Encoding, d.Terminator
	if encoding == "fhir" {
		loc, err := config.LoadZone(d.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("time_zone: %w", err)
		}
		opts := fhir.Options{Bundle: d.FHIRBundle, TimeZone: loc, Charset: d.Charset}
		return func(m Message) ([]byte, error) { return fhir.ConvertBytes(m.Data, opts) }, nil
	}
	if encoding == "json" {
		named := d.JSONNames
		return func(msg Message) ([]byte, error) {
			m, err := hl7.Parse(msg.Data)
			if err != nil {
				return nil, err
			}
			if named {
				return hl7.EncodeJSONNamed(m, spec.Namer(m))
			}
			return hl7.EncodeJSON(m)
		}, nil
	}
	term, ok := map[string]string{"": "", "cr": "\r", "lf": "\n", "crlf": "\r\n"}[terminator]
	switch {
	case encoding != "" && encoding != "er7":
		return nil, fmt.Errorf("encoding %q is not er7, json or fhir", encoding)
	case !ok:
		return nil, fmt.Errorf("segment_terminator %q is not cr, lf or crlf", terminator)
	case term == "":
		return nil, nil
	}
	return func(msg Message) ([]byte, error) {
		m, err := hl7.Parse(msg.Data)
		if err != nil {
			return nil, err
		}
		return m.AppendTerminated(nil, term), nil
	}, nil
}

// Encoded wraps d so that each message is encoded before it is
// delivered. A message that cannot be encoded is rejected: it would not
// encode on a retry either.
func Encoded(d Deliverer, enc Encoding) Deliverer {
	if enc == nil {
		return d
	}
	return &encodedDeliverer{Deliverer: d, encode: enc}
}

type encodedDeliverer struct {
	Deliverer
	encode Encoding
}

func (e *encodedDeliverer) Deliver(ctx context.Context, msg Message) Result {
	out, err := e.encode(msg)
	if err != nil {
		return Result{Outcome: Rejected, Reason: "cannot encode the message for this destination: " + err.Error()}
	}
	msg.Data = out
	res := e.Deliverer.Deliver(ctx, msg)
	if res.Sent == nil {
		res.Sent = out
	}
	return res
}

// AsSent is a copy (data, with the variables its route's scripts set)
// exactly as destination d receives it: through its encoder (compiled:
// enc), encoded as JSON or FHIR, or ER7 with its segment terminator; ext
// names a file of it (hl7, json or txt), as a file destination names its
// files.
func AsSent(d config.DestinationConfig, enc *script.Script, data []byte, vars map[string]string) (sent []byte, ext string, err error) {
	encode, err := NewEncoding(d, enc)
	if err != nil {
		return nil, "", err
	}
	if encode == nil {
		return data, extFor(d), nil
	}
	if sent, err = encode(Message{Data: data, Vars: vars}); err != nil {
		return nil, "", err
	}
	return sent, cmp.Or(extFor(d), sniffExt(sent)), nil
}

// sniffExt names a file of an encoder's payload by its first character.
func sniffExt(b []byte) string {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "txt"
	case b[0] == '{' || b[0] == '[':
		return "json"
	case b[0] == '<':
		return "xml"
	case bytes.HasPrefix(b, []byte("MSH")) || bytes.HasPrefix(b, []byte("FHS")) || bytes.HasPrefix(b, []byte("BHS")):
		return "hl7"
	}
	return "txt"
}

// encoderEncoding runs destination d's encoder: its script (s, may be
// nil), then its velocity text, in which ${message.encodedData} is what
// the script made (or the message as stored).
func encoderEncoding(d config.DestinationConfig, s *script.Script) Encoding {
	enc := *d.Encoder
	return func(msg Message) ([]byte, error) {
		vars := maps.Clone(msg.Vars)
		encoded := msg.Data
		if s != nil {
			m, err := hl7.Parse(msg.Data)
			if err != nil {
				return nil, err
			}
			in := script.Input{Message: m, Vars: vars, Template: enc.Template}
			res, err := s.Run(&in)
			if err != nil {
				return nil, err
			}
			encoded, vars = res.Payload, in.Vars
		}
		if enc.Velocity == "" {
			return encoded, nil
		}
		return []byte(script.Velocity(enc.Velocity, func(name string) (string, bool) {
			switch name {
			case "message.encodedData", "message.transformedData":
				return string(encoded), true
			case "message.rawData":
				return string(msg.Data), true
			}
			v, ok := vars[name]
			return v, ok
		})), nil
	}
}
