package hl7

import (
	"strings"
	"testing"
)

func TestLookupCharset(t *testing.T) {
	for name, want := range map[string]string{
		"ASCII": "ASCII", "8859/1": "8859/1", " 8859/9 ": "8859/9", "unicode utf-8": "UNICODE UTF-8",
		"UTF-8": "UNICODE UTF-8", "ISO-8859-1": "8859/1", "windows-1252": "WINDOWS-1252", "GB 18030-2000": "GB 18030-2000", "": "",
	} {
		c, err := LookupCharset(name)
		if err != nil || c.Name != want {
			t.Errorf("LookupCharset(%q) = %q, %v; want %q", name, c.Name, err, want)
		}
	}
	for _, bad := range []string{"UNICODE UTF-16", "EBCDIC", "8859/99"} {
		if _, err := LookupCharset(bad); err == nil {
			t.Errorf("LookupCharset(%q) succeeded", bad)
		}
	}
}

func TestCharsetDecodeAndWarnings(t *testing.T) {
	tests := []struct {
		charset string
		in      string
		want    string
		warn    string // a substring of the one warning expected, "" for none
	}{
		{"8859/1", "M\xfcller", "Müller", ""},
		{"8859/2", "\xa3ukasz", "Łukasz", ""},
		{"8859/7", "\xc1\xe8", "Αθ", ""},
		{"8859/5", "\xb8\xd2\xd0\xdd", "Иван", ""},
		{"windows-1252", "en\x96dash", "en–dash", ""},
		{"UNICODE UTF-8", "Müller", "Müller", ""},
		{"", "M\xfcller", "M\xfcller", ""},
		{"ASCII", "M\xfcller", "M\xfcller", "above 0x7F"},
		{"UNICODE UTF-8", "M\xfcller", "M\xfcller", "invalid UTF-8"},
		{"UNICODE UTF-8", "lost \uFFFD sign", "lost \uFFFD sign", "U+FFFD"},
		{"8859/1", "Müller", "MÃ¼ller", "UTF-8 byte sequence"},
		{"8859/1", "5 \uFFFDg", "5 ï¿½g", "U+FFFD"},
		{"8859/1", "en\x96dash", "en\u0096dash", "C1 control"},
		{"8859/3", "\xa5", "\uFFFD", "undefined"},
	}
	for _, tt := range tests {
		c, err := LookupCharset(tt.charset)
		if err != nil {
			t.Fatal(err)
		}
		got, ws := c.Decode([]byte(tt.in))
		if got != tt.want {
			t.Errorf("%s Decode(%q) = %q, want %q", tt.charset, tt.in, got, tt.want)
		}
		switch {
		case tt.warn == "" && len(ws) > 0:
			t.Errorf("%s %q: unexpected warnings %v", tt.charset, tt.in, ws)
		case tt.warn != "" && (len(ws) != 1 || !strings.Contains(ws[0].Reason, tt.warn)):
			t.Errorf("%s %q: warnings %v, want one about %q", tt.charset, tt.in, ws, tt.warn)
		}
		for _, w := range ws {
			if strings.Contains(w.String(), "ller") || strings.Contains(w.String(), "dash") {
				t.Errorf("warning %q carries content", w)
			}
		}
	}
}

func TestResolveCharset(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5||||||8859/1~UNICODE UTF-8\rPID|1||||M\xfcller\r"))
	for _, tt := range []struct {
		configured string
		respect    bool
		want       string
	}{
		{"", false, ""}, {"", true, "8859/1"}, {"UNICODE UTF-8", true, "UNICODE UTF-8"}, {"ASCII", false, "ASCII"},
	} {
		c, err := m.ResolveCharset(tt.configured, tt.respect)
		if err != nil || c.Name != tt.want {
			t.Errorf("ResolveCharset(%q, %v) = %q, %v; want %q", tt.configured, tt.respect, c.Name, err, tt.want)
		}
	}
	c, _ := m.ResolveCharset("", true)
	if got, ws := c.Decode(m.Value(MustParsePath("PID-5"))); got != "Müller" || len(ws) != 0 {
		t.Errorf("decoded PID-5 = %q %v", got, ws)
	}
	bad := mustParse(t, []byte("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5||||||KLINGON\r"))
	if _, err := bad.ResolveCharset("", true); err == nil {
		t.Error("unknown MSH-18 gave no error")
	}
}
