package fhir

import (
	"encoding/json"
	"strings"
	"testing"
)

// plain8 may send a plain run to the byte loop, never a byte that needs
// escaping past it.
func TestPlain8(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			if plain8(string(b)) && !plain[c] {
				t.Fatalf("byte %#x at %d passed as plain", c, pos)
			}
		}
	}
	if !plain8("http://l") {
		t.Error("plain ASCII not seen as plain")
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain text of some length", "quote \" and \\ backslash in a long enough string", "tab\tnew\nline\rcr\x01",
		"Müller Jörg — ünïcödé in a longer string", "bad \xff byte in a longer string", strings.Repeat("x", 100) + "\"" + strings.Repeat("y", 9)} {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Errorf("%q came back as %q", s, back)
		}
	}
}
