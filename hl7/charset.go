package hl7

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Charset decodes a message's text to UTF-8. The zero Charset leaves
// bytes as they are.
type Charset struct {
	Name string // the HL7 table 0211 name, "" for bytes as they are
	kind charsetKind
	enc  encoding.Encoding
}

type charsetKind int

const (
	kindRaw charsetKind = iota
	kindASCII
	kindUTF8
	kindSingleByte
	kindMultiByte
)

type charsetEntry struct {
	name string
	kind charsetKind
	enc  encoding.Encoding
}

// charsets maps upper-cased names, HL7 table 0211's and the common
// non-standard ones senders write, to their decoders.
var charsets = map[string]charsetEntry{
	"ASCII":         {"ASCII", kindASCII, nil},
	"US-ASCII":      {"ASCII", kindASCII, nil},
	"UNICODE UTF-8": {"UNICODE UTF-8", kindUTF8, nil},
	"UTF-8":         {"UNICODE UTF-8", kindUTF8, nil},
	"UTF8":          {"UNICODE UTF-8", kindUTF8, nil},
	"8859/1":        {"8859/1", kindSingleByte, charmap.ISO8859_1},
	"8859/2":        {"8859/2", kindSingleByte, charmap.ISO8859_2},
	"8859/3":        {"8859/3", kindSingleByte, charmap.ISO8859_3},
	"8859/4":        {"8859/4", kindSingleByte, charmap.ISO8859_4},
	"8859/5":        {"8859/5", kindSingleByte, charmap.ISO8859_5},
	"8859/6":        {"8859/6", kindSingleByte, charmap.ISO8859_6},
	"8859/7":        {"8859/7", kindSingleByte, charmap.ISO8859_7},
	"8859/8":        {"8859/8", kindSingleByte, charmap.ISO8859_8},
	"8859/9":        {"8859/9", kindSingleByte, charmap.ISO8859_9},
	"8859/15":       {"8859/15", kindSingleByte, charmap.ISO8859_15},
	"ISO-8859-1":    {"8859/1", kindSingleByte, charmap.ISO8859_1},
	"LATIN1":        {"8859/1", kindSingleByte, charmap.ISO8859_1},
	"ISO-8859-15":   {"8859/15", kindSingleByte, charmap.ISO8859_15},
	"WINDOWS-1252":  {"WINDOWS-1252", kindSingleByte, charmap.Windows1252},
	"CP1252":        {"WINDOWS-1252", kindSingleByte, charmap.Windows1252},
	"GB 18030-2000": {"GB 18030-2000", kindMultiByte, simplifiedchinese.GB18030},
	"KS X 1001":     {"KS X 1001", kindMultiByte, korean.EUCKR},
	"BIG-5":         {"BIG-5", kindMultiByte, traditionalchinese.Big5},
}

// LookupCharset finds a charset by its HL7 table 0211 name (ASCII,
// 8859/1 to 8859/9, 8859/15, UNICODE UTF-8, GB 18030-2000, KS X 1001,
// BIG-5) or a common alias (UTF-8, ISO-8859-1, windows-1252). Case and
// surrounding spaces are ignored. An empty name gives the raw Charset.
// UTF-16 and UTF-32 are refused: their bytes cannot carry ASCII delimiters.
func LookupCharset(name string) (Charset, error) {
	key := strings.ToUpper(strings.TrimSpace(name))
	if key == "" {
		return Charset{}, nil
	}
	e, ok := charsets[key]
	if !ok {
		return Charset{}, fmt.Errorf("hl7: unsupported character set %q", name)
	}
	return Charset{Name: e.name, kind: e.kind, enc: e.enc}, nil
}

// ResolveCharset chooses how to decode this message's text: the
// configured charset when given; else MSH-18 when respectMSH18 is set and
// MSH-18 names one; else bytes as they are. MSH-18 is often wrong in
// practice, hence off unless asked for. An unknown MSH-18 is an error the
// caller can log; the raw Charset comes with it.
func (m *Message) ResolveCharset(configured string, respectMSH18 bool) (Charset, error) {
	if configured != "" {
		return LookupCharset(configured)
	}
	if respectMSH18 {
		return LookupCharset(m.CharacterSet())
	}
	return Charset{}, nil
}

// CharsetWarning says that bytes contradict the charset. It holds an
// offset and a count, never the bytes.
type CharsetWarning struct {
	Offset int // first offending byte
	Count  int // how many places
	Reason string
}

func (w CharsetWarning) String() string {
	return fmt.Sprintf("%s (first at byte %d, %d in all)", w.Reason, w.Offset, w.Count)
}

// replacementChar is U+FFFD in UTF-8: text lost before it reached us.
var replacementChar = []byte("\uFFFD")

// Check reports where b contradicts c, without decoding.
func (c Charset) Check(b []byte) []CharsetWarning {
	var ws []CharsetWarning
	add := func(offset int, reason string) {
		for i := range ws {
			if ws[i].Reason == reason {
				ws[i].Count++
				return
			}
		}
		ws = append(ws, CharsetWarning{Offset: offset, Count: 1, Reason: reason})
	}
	switch c.kind {
	case kindRaw:
		return nil
	case kindASCII:
		for i, x := range b {
			if x >= 0x80 {
				add(i, "byte above 0x7F in text declared ASCII")
			}
		}
	case kindUTF8:
		if utf8.Valid(b) && !bytes.Contains(b, replacementChar) {
			return nil
		}
		for i := 0; i < len(b); {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				add(i, "invalid UTF-8 in text declared UNICODE UTF-8")
			} else if r == utf8.RuneError {
				add(i, "U+FFFD replacement character: text was already lost before it arrived")
			}
			i += size
		}
	case kindSingleByte:
		checkSingleByte(c, b, add)
	case kindMultiByte:
		out, err := c.enc.NewDecoder().Bytes(b)
		if err != nil || bytes.Count(out, replacementChar) > bytes.Count(b, replacementChar) {
			add(0, "bytes that are not valid "+c.Name)
		}
	}
	return ws
}

// checkSingleByte flags, in text declared 8859/x or windows-1252, multi-byte
// UTF-8 sequences (the commonest mislabel), C1 control bytes (usually
// windows-1252 labelled 8859/1) and bytes the charset leaves undefined.
func checkSingleByte(c Charset, b []byte, add func(int, string)) {
	cm, _ := c.enc.(*charmap.Charmap)
	for i := 0; i < len(b); {
		x := b[i]
		if x < 0x80 {
			i++
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); size > 1 {
			if r == utf8.RuneError {
				add(i, "U+FFFD replacement character: text was already lost before it arrived")
			} else {
				add(i, "UTF-8 byte sequence in text declared "+c.Name)
			}
			i += size
			continue
		}
		if x < 0xA0 && c.Name != "WINDOWS-1252" {
			add(i, "C1 control byte in text declared "+c.Name+" (windows-1252?)")
		} else if cm != nil && cm.DecodeByte(x) == utf8.RuneError {
			add(i, "byte undefined in "+c.Name)
		}
		i++
	}
}

// Decode converts b to UTF-8 text under c, with the warnings of Check.
// Raw and UTF-8 charsets return the bytes as they are; undecodable bytes
// elsewhere become U+FFFD, and a warning says so.
func (c Charset) Decode(b []byte) (string, []CharsetWarning) {
	ws := c.Check(b)
	switch c.kind {
	case kindRaw, kindASCII, kindUTF8:
		return string(b), ws
	}
	out, err := c.enc.NewDecoder().Bytes(b)
	if err != nil {
		return string(b), append(ws, CharsetWarning{Offset: 0, Count: 1, Reason: "could not decode as " + c.Name + "; bytes kept as they are"})
	}
	return string(out), ws
}
