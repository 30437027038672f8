package hl7

// Delimiters are a message's separators, read from MSH-1 and MSH-2.
type Delimiters struct {
	Field        byte
	Component    byte
	Repetition   byte
	Escape       byte
	Subcomponent byte
	Truncation   byte // v2.7+ fifth encoding character; 0 when absent
}

// DefaultDelimiters are |^~\& with no truncation character.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingChars renders MSH-2 for these delimiters.
func (d Delimiters) EncodingChars() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// isDelimiter reports whether c is one of the separators or the escape
// character (the characters a value must escape).
func (d *Delimiters) isDelimiter(c byte) bool {
	return c == d.Field || c == d.Component || c == d.Repetition || c == d.Escape ||
		c == d.Subcomponent || (d.Truncation != 0 && c == d.Truncation)
}

// validDelimiterByte: printable ASCII punctuation only. Letters, digits and
// space would make ordinary text ambiguous; control bytes would make
// segment terminators and framing ambiguous.
func validDelimiterByte(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
}

// parseDelimiters reads MSH-1 and MSH-2 from a header segment (MSH, BHS or
// FHS) starting at data[0]. It returns the delimiters, the length of MSH-2
// as it stands in the bytes, and whether MSH-2 was the real-world doubled
// backslash form ^~\\& (accepted as ^~\&, see docs/hl7.md).
func parseDelimiters(data []byte, base int) (d Delimiters, encLen int, repaired bool, err error) {
	if len(data) < 4 {
		return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, Location{Segment: "MSH", Sequence: 1, Field: 1, Offset: base}, "MSH-1 (field separator) is missing")
	}
	d.Field = data[3]
	if !validDelimiterByte(d.Field) {
		return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, Location{Segment: "MSH", Sequence: 1, Field: 1, Offset: base + 3}, "MSH-1 (field separator) is byte 0x%02x, not a printable punctuation character", d.Field)
	}
	loc := Location{Segment: "MSH", Sequence: 1, Field: 2, Offset: base + 4}
	enc := data[4:]
	for i, c := range enc {
		if c == d.Field || c == '\r' || c == '\n' {
			enc = enc[:i]
			break
		}
	}
	encLen = len(enc)
	if len(enc) == 5 && enc[2] == '\\' && enc[3] == '\\' && enc[4] != '\\' {
		// ^~\\& : a doubled escape character, usually from a sender's
		// string-literal bug. Its meaning is unambiguous; the bytes are kept.
		enc = []byte{enc[0], enc[1], enc[2], enc[4]}
		repaired = true
	}
	switch len(enc) {
	case 4, 5:
	case 0:
		return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, loc, "MSH-2 (encoding characters) is empty")
	default:
		return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, loc, "MSH-2 has %d encoding characters; want 4, or 5 with the v2.7 truncation character", len(enc))
	}
	var seen [256]bool
	seen[d.Field] = true
	for i, c := range enc {
		if !validDelimiterByte(c) {
			return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, loc, "MSH-2 character %d is byte 0x%02x, not a printable punctuation character", i+1, c)
		}
		if seen[c] {
			return d, 0, false, newError(ErrBadEncodingChars, CodeDataType, loc, "MSH-2 character %d repeats another delimiter", i+1)
		}
		seen[c] = true
	}
	d.Component, d.Repetition, d.Escape, d.Subcomponent = enc[0], enc[1], enc[2], enc[3]
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	return d, encLen, repaired, nil
}
