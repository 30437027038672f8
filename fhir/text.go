package fhir

import (
	"bytes"
	"encoding/hex"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/hl7broker/hl7broker/hl7"
)

// piece returns the n-th (1-based) part of raw split at sep, or nil.
func piece(raw []byte, sep byte, n int) []byte {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(raw, sep)
		if j < 0 {
			return nil
		}
		raw = raw[j+1:]
	}
	if j := bytes.IndexByte(raw, sep); j >= 0 {
		return raw[:j]
	}
	return raw
}

// split calls f with each part of raw split at sep (none for empty raw).
func split(raw []byte, sep byte, f func([]byte)) {
	if len(raw) == 0 {
		return
	}
	for {
		j := bytes.IndexByte(raw, sep)
		if j < 0 {
			f(raw)
			return
		}
		f(raw[:j])
		raw = raw[j+1:]
	}
}

// texter turns raw field bytes into text: escapes decoded, the message's
// charset decoded to UTF-8, surrounding spaces trimmed, and HL7's explicit
// null ("") read as empty, since FHIR has nothing to delete here.
type texter struct {
	d       hl7.Delimiters
	charset hl7.Charset
	decode  bool // the charset is neither ASCII, UTF-8 nor raw
}

func (t *texter) text(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (len(raw) == 2 && raw[0] == '"' && raw[1] == '"') {
		return ""
	}
	if !t.decode && bytes.IndexByte(raw, t.d.Escape) < 0 && utf8.Valid(raw) {
		return view(raw)
	}
	var s string
	if bytes.IndexByte(raw, t.d.Escape) >= 0 {
		s = t.unescape(raw)
	} else {
		s = string(raw)
	}
	if t.decode {
		s, _ = t.charset.Decode([]byte(s))
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.TrimSpace(s)
}

// view is b as a string without copying it. The converter only reads the
// message's bytes while it converts, and every string it keeps is written
// into the Bundle before Convert returns; whatever leaves Convert (an
// error's text) is cloned first.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// unescape decodes delimiter escapes, \Xhh..\ hex data, and the formatting
// escapes of FT: \.br\ and \.sp\ are line breaks; highlighting (\H\ \N\)
// and other formatting commands are dropped, their text kept.
func (t *texter) unescape(raw []byte) string {
	var out []byte
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != t.d.Escape {
			out = append(out, c)
			i++
			continue
		}
		end := bytes.IndexByte(raw[i+1:], t.d.Escape)
		if end < 0 {
			out = append(out, raw[i:]...)
			break
		}
		seq := raw[i+1 : i+1+end]
		i += end + 2
		switch {
		case len(seq) == 1 && seq[0] == 'F':
			out = append(out, t.d.Field)
		case len(seq) == 1 && seq[0] == 'S':
			out = append(out, t.d.Component)
		case len(seq) == 1 && seq[0] == 'T':
			out = append(out, t.d.Subcomponent)
		case len(seq) == 1 && seq[0] == 'R':
			out = append(out, t.d.Repetition)
		case len(seq) == 1 && seq[0] == 'E':
			out = append(out, t.d.Escape)
		case len(seq) == 1 && seq[0] == 'P' && t.d.Truncation != 0:
			out = append(out, t.d.Truncation)
		case len(seq) > 1 && seq[0] == 'X':
			if b, err := hex.DecodeString(string(seq[1:])); err == nil {
				out = append(out, b...)
			}
		case bytes.HasPrefix(seq, []byte(".br")), bytes.HasPrefix(seq, []byte(".sp")):
			out = append(out, '\n')
		}
	}
	return string(out)
}

// maxParts is how many components splitParts keeps: every component the
// maps read is below it.
const maxParts = 16

// parts is a value split at one separator, without allocating.
type parts struct {
	p [maxParts][]byte
	n int
}

func splitParts(raw []byte, sep byte) (ps parts) {
	for ps.n < maxParts {
		j := bytes.IndexByte(raw, sep)
		if j < 0 {
			ps.p[ps.n] = raw
			ps.n++
			return ps
		}
		ps.p[ps.n] = raw[:j]
		ps.n++
		raw = raw[j+1:]
	}
	return ps
}

// at is part n (1-based), nil when absent.
func (ps *parts) at(n int) []byte {
	if n < 1 || n > ps.n {
		return nil
	}
	return ps.p[n-1]
}

// partText is component n's text (its first subcomponent).
func (c *conv) partText(ps *parts, n int) string { return c.text(c.sub(ps.at(n), 1)) }
