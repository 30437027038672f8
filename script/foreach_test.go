package script

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForEachIsRewrittenKeepingLines(t *testing.T) {
	for src, want := range map[string]string{
		"for each (var x in list) f(x);":                    "for (var x of __each(list)) f(x);",
		"for each(seg in msg.children()) {}":                "for (seg of __each(msg.children())) {}",
		"for each (x in a[f(1)]) for each (y in x) g(y)":    "for (x of __each(a[f(1)])) for (y of __each(x)) g(y)",
		"var s = 'for each (x in y)'; // for each (z in w)": "var s = 'for each (x in y)'; // for each (z in w)",
		"x = /for each (a in b)/; y.for(1)":                 "x = /for each (a in b)/; y.for(1)",
		"for each (x\nin\n list) {}":                        "for (x\nof __each(\n list)) {}",
		"for (var k in obj) {}":                             "for (var k in obj) {}",
	} {
		got, err := RewriteForEach(src)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
		assert.Equal(t, strings.Count(src, "\n"), strings.Count(got, "\n"))
	}
}

func TestForEachErrorsArePlaced(t *testing.T) {
	for _, src := range []string{"a;\nfor each x in y", "for each (x in y", "for each (x of y) {}"} {
		_, err := RewriteForEach(src)
		var pe *PositionError
		require.ErrorAs(t, err, &pe, src)
		assert.NotZero(t, pe.Line)
	}
}

func FuzzRewriteForEach(f *testing.F) {
	for _, s := range []string{"for each (x in y) {}", "for each (", "`${for each (a in b)}`", "/[/]/ for each (a in b)", "for each (a in (b)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := RewriteForEach(src)
		if err == nil && strings.Count(out, "\n") != strings.Count(src, "\n") {
			t.Fatalf("lines moved: %q -> %q", src, out)
		}
	})
}
