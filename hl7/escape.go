package hl7

import "bytes"

// Unescape decodes \F\ \S\ \T\ \R\ \E\ (and \P\ where a truncation
// character is defined) to the delimiters they stand for. Formatting and
// charset escapes (\Xhh..\, \.br\, \H\, \N\, \Z..\, \C..\, \M..\) pass
// through unchanged, as does an escape character with no closing one.
// When raw holds no escape character, raw itself is returned.
func (d Delimiters) Unescape(raw []byte) []byte {
	first := bytes.IndexByte(raw, d.Escape)
	if first < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	return d.appendUnescaped(out, raw, first)
}

func (d Delimiters) appendUnescaped(out, raw []byte, first int) []byte {
	out = append(out, raw[:first]...)
	i := first
	for i < len(raw) {
		c := raw[i]
		if c != d.Escape {
			out = append(out, c)
			i++
			continue
		}
		end := bytes.IndexByte(raw[i+1:], d.Escape)
		if end < 0 { // no closing escape: keep the rest as it is
			return append(out, raw[i:]...)
		}
		seq := raw[i+1 : i+1+end]
		next := i + 2 + end
		if len(seq) == 1 {
			if r, ok := d.decodeOne(seq[0]); ok {
				out = append(out, r)
				i = next
				continue
			}
		}
		out = append(out, raw[i:next]...)
		i = next
	}
	return out
}

func (d Delimiters) decodeOne(code byte) (byte, bool) {
	switch code {
	case 'F':
		return d.Field, true
	case 'S':
		return d.Component, true
	case 'T':
		return d.Subcomponent, true
	case 'R':
		return d.Repetition, true
	case 'E':
		return d.Escape, true
	case 'P':
		if d.Truncation != 0 {
			return d.Truncation, true
		}
	}
	return 0, false
}

// EscapeString encodes a value so that it is data, not structure: each delimiter
// becomes its escape sequence, and CR and LF become \X0D\ and \X0A\ so a
// value can never end a segment.
func (d Delimiters) EscapeString(value string) string {
	clean := true
	for i := 0; i < len(value); i++ {
		if c := value[i]; d.isDelimiter(c) || c == '\r' || c == '\n' {
			clean = false
			break
		}
	}
	if clean {
		return value
	}
	return string(d.AppendEscaped(nil, value))
}

// AppendEscaped appends the escaped form of value to dst.
func (d Delimiters) AppendEscaped(dst []byte, value string) []byte {
	for i := 0; i < len(value); i++ {
		c := value[i]
		var code byte
		switch {
		case c == d.Field:
			code = 'F'
		case c == d.Component:
			code = 'S'
		case c == d.Subcomponent:
			code = 'T'
		case c == d.Repetition:
			code = 'R'
		case c == d.Escape:
			code = 'E'
		case d.Truncation != 0 && c == d.Truncation:
			code = 'P'
		case c == '\r':
			dst = append(dst, d.Escape, 'X', '0', 'D', d.Escape)
			continue
		case c == '\n':
			dst = append(dst, d.Escape, 'X', '0', 'A', d.Escape)
			continue
		default:
			dst = append(dst, c)
			continue
		}
		dst = append(dst, d.Escape, code, d.Escape)
	}
	return dst
}
