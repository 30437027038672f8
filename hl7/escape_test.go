package hl7

import "testing"

func TestUnescape(t *testing.T) {
	d := DefaultDelimiters
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\F\b`, `a|b`},
		{`\S\\T\\R\\E\`, `^&~\`},
		{`x\P\y`, `x\P\y`}, // no truncation character defined
		{`line\.br\two`, `line\.br\two`},
		{`\X0D0A\ \H\bold\N\ \Zfoo\`, `\X0D0A\ \H\bold\N\ \Zfoo\`},
		{`unterminated \F`, `unterminated \F`},
		{`\\`, `\\`},
		{`Müller \F\ Köln`, `Müller | Köln`},
	}
	for _, tt := range tests {
		if got := string(d.Unescape([]byte(tt.in))); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	d27 := d
	d27.Truncation = '#'
	if got := string(d27.Unescape([]byte(`x\P\y`))); got != "x#y" {
		t.Errorf("v2.7 Unescape = %q", got)
	}
	in := []byte("no escapes here")
	if out := d.Unescape(in); &out[0] != &in[0] {
		t.Error("Unescape copied a value without escapes")
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	d := Delimiters{Field: '$', Component: '%', Repetition: '~', Escape: '\\', Subcomponent: '&', Truncation: '#'}
	for _, v := range []string{"", "plain", "a$b%c~d\\e&f#g", "Jo|hn^", "Zoë & Łukasz"} {
		esc := d.EscapeString(v)
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; c != d.Escape && d.isDelimiter(c) {
				t.Errorf("EscapeString(%q) = %q still holds delimiter %q", v, esc, c)
			}
		}
		if got := string(d.Unescape([]byte(esc))); got != v {
			t.Errorf("Unescape(EscapeString(%q)) = %q", v, got)
		}
	}
	if got := DefaultDelimiters.EscapeString("a\rb\nc"); got != `a\X0D\b\X0A\c` {
		t.Errorf("CR/LF escaped as %q", got)
	}
}
