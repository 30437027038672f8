package delivery

import (
	"context"
	"fmt"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/fhir"
	"github.com/hl7broker/hl7broker/hl7"
)

// Encoding turns a message as stored (ER7) into what a destination
// receives. nil: the stored bytes as they are.
type Encoding func(data []byte) ([]byte, error)

// NewEncoding returns the encoding a destination asks for: "json" (the
// mapping of hl7.EncodeJSON), "fhir" (a FHIR R4 Bundle, package fhir), or
// ER7 with its segments ended by "cr", "lf" or "crlf"; nil for ER7 as
// received.
func NewEncoding(d config.DestinationConfig) (Encoding, error) {
	encoding, terminator := d.Encoding, d.Terminator
	if encoding == "fhir" {
		loc, err := config.LoadZone(d.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("time_zone: %w", err)
		}
		opts := fhir.Options{Bundle: d.FHIRBundle, TimeZone: loc, Charset: d.Charset}
		return func(data []byte) ([]byte, error) { return fhir.ConvertBytes(data, opts) }, nil
	}
	if encoding == "json" {
		return func(data []byte) ([]byte, error) {
			m, err := hl7.Parse(data)
			if err != nil {
				return nil, err
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
	return func(data []byte) ([]byte, error) {
		m, err := hl7.Parse(data)
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
	data := msg.Data
	out, err := e.encode(data)
	if err != nil {
		return Result{Outcome: Rejected, Reason: "cannot encode the message for this destination: " + err.Error()}
	}
	msg.Data = out
	return e.Deliverer.Deliver(ctx, msg)
}

// AsSent is data exactly as destination d receives it: encoded as JSON or
// FHIR, or ER7 with its segment terminator; ext names a file of it (hl7
// or json), as a file destination names its files.
func AsSent(d config.DestinationConfig, data []byte) (sent []byte, ext string, err error) {
	enc, err := NewEncoding(d)
	if err != nil {
		return nil, "", err
	}
	if enc == nil {
		return data, extFor(d.Encoding), nil
	}
	if sent, err = enc(data); err != nil {
		return nil, "", err
	}
	return sent, extFor(d.Encoding), nil
}
