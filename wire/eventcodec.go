package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Journey events are written for every message and read by every
// broker's index, so their JSON is made and read here by hand: the same
// bytes encoding/json makes, several times faster. Anything unusual (an
// escape in a string, a key from a newer version) goes through
// encoding/json, so the result never differs from it.

// AppendEvent appends e as one JSON object (no newline), byte for byte
// what encoding/json makes of it.
func AppendEvent(b []byte, e Event) ([]byte, error) {
	start := len(b)
	b = append(b, `{"kind":`...)
	ok := true
	str := func(s string) {
		if ok = ok && plainString(s); ok {
			b = append(append(append(b, '"'), s...), '"')
		}
	}
	strField := func(key, s string) {
		if s != "" {
			b = append(append(append(b, ',', '"'), key...), '"', ':')
			str(s)
		}
	}
	uintField := func(key string, v uint64) {
		if v != 0 {
			b = append(append(append(b, ',', '"'), key...), '"', ':')
			b = strconv.AppendUint(b, v, 10)
		}
	}
	list := func(key string, v []string) {
		if len(v) == 0 {
			return
		}
		b = append(append(append(b, ',', '"'), key...), '"', ':', '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			str(s)
		}
		b = append(b, ']')
	}
	str(e.Kind)
	if y := e.At.Year(); y < 0 || y > 9999 {
		ok = false
	}
	b = append(b, `,"at":"`...)
	b = append(e.At.AppendFormat(b, time.RFC3339Nano), '"')
	uintField("message", e.Message)
	strField("listener", e.Listener)
	strField("remote", e.Remote)
	strField("ack", e.Ack)
	if e.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	strField("type", e.Type)
	strField("trigger", e.Trigger)
	strField("control_id", e.ControlID)
	strField("sending_app", e.SendingApp)
	strField("sending_fac", e.SendingFac)
	strField("version", e.Version)
	if e.Size != 0 {
		b = strconv.AppendInt(append(b, `,"size":`...), int64(e.Size), 10)
	}
	strField("replay_of", e.ReplayOf)
	if len(e.Problems) > 0 {
		ok = false // rare: encoding/json writes them (and the keys after them)
	}
	if len(e.Keys) > 0 {
		b = append(b, `,"keys":{`...)
		for i, k := range sortedKeys(e.Keys) {
			if i > 0 {
				b = append(b, ',')
			}
			str(k)
			b = append(b, ':')
			if v := e.Keys[k]; v == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j, s := range v {
					if j > 0 {
						b = append(b, ',')
					}
					str(s)
				}
				b = append(b, ']')
			}
		}
		b = append(b, '}')
	}
	list("routes", e.Routes)
	list("destinations", e.Destinations)
	list("changed", e.Changed)
	if len(e.OutSeqs) > 0 {
		b = append(b, `,"out_seqs":{`...)
		for i, k := range sortedKeys(e.OutSeqs) {
			if i > 0 {
				b = append(b, ',')
			}
			str(k)
			b = strconv.AppendUint(append(b, ':'), e.OutSeqs[k], 10)
		}
		b = append(b, '}')
	}
	if e.Unrouted {
		b = append(b, `,"unrouted":true`...)
	}
	strField("destination", e.Destination)
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	if e.Millis != 0 {
		if a := math.Abs(e.Millis); a < 1e-6 || a >= 1e21 || math.IsNaN(a) {
			ok = false // encoding/json's exponent form, or an error
		}
		b = strconv.AppendFloat(append(b, `,"ms":`...), e.Millis, 'f', -1, 64)
	}
	strField("outcome", e.Outcome)
	strField("code", e.Code)
	strField("reason", e.Reason)
	uintField("dlq", e.DLQ)
	strField("by", e.By)
	uintField("as", e.As)
	bytesField := func(key string, v []byte) {
		if len(v) > 0 { // omitempty: encoding/json leaves out an empty slice
			b = append(append(append(b, ',', '"'), key...), '"', ':', '"')
			b = append(base64.StdEncoding.AppendEncode(b, v), '"')
		}
	}
	bytesField("sent", e.Sent)
	strField("sent_name", e.SentName)
	if e.SentSize != 0 {
		b = strconv.AppendInt(append(b, `,"sent_size":`...), int64(e.SentSize), 10)
	}
	bytesField("response", e.Response)
	strField("sha256", e.SHA256)
	b = append(b, '}')
	if ok {
		return b, nil
	}
	data, err := json.Marshal(e)
	return append(b[:start], data...), err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// plainString: s needs no escaping in JSON (encoding/json escapes
// control characters, quotes, backslashes, <, > and &, and rewrites
// what is not UTF-8).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

var errSlowPath = errors.New("not the common form")

// ParseEvent reads one JSON event into e, as json.Unmarshal would.
func ParseEvent(line []byte, e *Event) error {
	*e = Event{}
	if parseEventFast(line, e) == nil {
		return nil
	}
	*e = Event{}
	return json.Unmarshal(line, e)
}

// parseEventFast reads the form AppendEvent writes: known keys, strings
// without escapes; anything else is errSlowPath.
func parseEventFast(line []byte, e *Event) error {
	p := eventParser{b: line}
	p.space()
	if !p.byte('{') {
		return errSlowPath
	}
	p.space()
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.str()
		p.space()
		if !ok || !p.byte(':') {
			return errSlowPath
		}
		p.space()
		var err error
		switch string(key) {
		case "kind":
			e.Kind, err = p.text()
		case "at":
			var s string
			if s, err = p.text(); err == nil {
				e.At, err = time.Parse(time.RFC3339Nano, s)
			}
		case "message":
			e.Message, err = p.uint()
		case "listener":
			e.Listener, err = p.text()
		case "remote":
			e.Remote, err = p.text()
		case "ack":
			e.Ack, err = p.text()
		case "duplicate":
			e.Duplicate, err = p.bool()
		case "routes":
			e.Routes, err = p.list()
		case "destinations":
			e.Destinations, err = p.list()
		case "changed":
			e.Changed, err = p.list()
		case "out_seqs":
			err = p.seqs(e)
		case "type":
			e.Type, err = p.text()
		case "trigger":
			e.Trigger, err = p.text()
		case "control_id":
			e.ControlID, err = p.text()
		case "sending_app":
			e.SendingApp, err = p.text()
		case "sending_fac":
			e.SendingFac, err = p.text()
		case "version":
			e.Version, err = p.text()
		case "size":
			var n uint64
			n, err = p.uint()
			if n > math.MaxInt32 {
				err = errSlowPath
			}
			e.Size = int(n)
		case "replay_of":
			e.ReplayOf, err = p.text()
		case "keys":
			err = p.keys(e)
		case "unrouted":
			e.Unrouted, err = p.bool()
		case "destination":
			e.Destination, err = p.text()
		case "attempt":
			var n uint64
			n, err = p.uint()
			if n > math.MaxInt32 {
				err = errSlowPath
			}
			e.Attempt = int(n)
		case "ms":
			e.Millis, err = p.float()
		case "outcome":
			e.Outcome, err = p.text()
		case "code":
			e.Code, err = p.text()
		case "reason":
			e.Reason, err = p.text()
		case "dlq":
			e.DLQ, err = p.uint()
		case "by":
			e.By, err = p.text()
		case "as":
			e.As, err = p.uint()
		case "sent":
			e.Sent, err = p.base64()
		case "sent_name":
			e.SentName, err = p.text()
		case "sent_size":
			var n uint64
			n, err = p.uint()
			if n > math.MaxInt32 {
				err = errSlowPath
			}
			e.SentSize = int(n)
		case "response":
			e.Response, err = p.base64()
		case "sha256":
			e.SHA256, err = p.text()
		default:
			return errSlowPath
		}
		if err != nil {
			return errSlowPath
		}
		p.space()
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return errSlowPath
		}
		p.space()
	}
}

type eventParser struct {
	b []byte
	i int
}

func (p *eventParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *eventParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *eventParser) end() error {
	p.space()
	if p.i != len(p.b) {
		return errSlowPath
	}
	return nil
}

// str reads a string without escapes or control characters.
func (p *eventParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

func (p *eventParser) text() (string, error) {
	s, ok := p.str()
	if !ok {
		return "", errSlowPath
	}
	return string(s), nil
}

// base64 reads a []byte as encoding/json writes it.
func (p *eventParser) base64() ([]byte, error) {
	s, ok := p.str()
	if !ok {
		return nil, errSlowPath
	}
	out, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(s))), s)
	if err != nil {
		return nil, errSlowPath
	}
	return out, nil
}

// number is the bytes of a JSON number.
func (p *eventParser) number() []byte {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.i++
	}
	return p.b[start:p.i]
}

func (p *eventParser) uint() (uint64, error) {
	n := p.number()
	if len(n) == 0 || (len(n) > 1 && n[0] == '0') {
		return 0, errSlowPath
	}
	return strconv.ParseUint(string(n), 10, 64)
}

func (p *eventParser) float() (float64, error) {
	n := p.number()
	if len(n) == 0 || bytes.ContainsAny(n, "+eE") {
		return 0, errSlowPath
	}
	return strconv.ParseFloat(string(n), 64)
}

func (p *eventParser) bool() (bool, error) {
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, nil
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, nil
	}
	return false, errSlowPath
}

func (p *eventParser) list() ([]string, error) {
	if !p.byte('[') {
		return nil, errSlowPath
	}
	out := []string{}
	p.space()
	if p.byte(']') {
		return out, nil
	}
	for {
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		p.space()
		if p.byte(']') {
			return out, nil
		}
		if !p.byte(',') {
			return nil, errSlowPath
		}
		p.space()
	}
}

func (p *eventParser) keys(e *Event) error {
	if e.Keys == nil {
		e.Keys = map[string][]string{}
	}
	return p.object(func(k string) (err error) {
		e.Keys[k], err = p.list()
		return err
	})
}

func (p *eventParser) seqs(e *Event) error {
	if e.OutSeqs == nil {
		e.OutSeqs = map[string]uint64{}
	}
	return p.object(func(k string) (err error) {
		e.OutSeqs[k], err = p.uint()
		return err
	})
}

// object reads {"key": value, ...}, each value by value.
func (p *eventParser) object(value func(key string) error) error {
	if !p.byte('{') {
		return errSlowPath
	}
	p.space()
	if p.byte('}') {
		return nil
	}
	for {
		k, err := p.text()
		if err != nil {
			return err
		}
		p.space()
		if !p.byte(':') {
			return errSlowPath
		}
		p.space()
		if err := value(k); err != nil {
			return err
		}
		p.space()
		if p.byte('}') {
			return nil
		}
		if !p.byte(',') {
			return errSlowPath
		}
		p.space()
	}
}
