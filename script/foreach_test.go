package script

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForEachIsRewrittenKeepingLines(t *testing.T) {
	for src, want := range map[string]string{
		"for each (var x in list) f(x);":                    "for (var x, __a1 = __each(list), __i1 = 0; __i1 < __a1.length && ((x = __a1[__i1]) || true); __i1++) f(x);",
		"for each(seg in msg.children()) {}":                "for (var __a1 = __each(msg.children()), __i1 = 0; __i1 < __a1.length && ((seg = __a1[__i1]) || true); __i1++) {}",
		"for each (x\nin\n list) {}":                        "for (var __a1 = __each(\n\n list), __i1 = 0; __i1 < __a1.length && ((x = __a1[__i1]) || true); __i1++) {}",
		"var s = 'for each (x in y)'; // for each (z in w)": "var s = 'for each (x in y)'; // for each (z in w)",
		"x = /for each (a in b)/; y.for(1)":                 "x = /for each (a in b)/; y.for(1)",
		"for (var k in obj) {}":                             "for (var k in obj) {}",
	} {
		got, err := RewriteForEach(src)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
		assert.Equal(t, strings.Count(src, "\n"), strings.Count(got, "\n"))
	}
}

func TestForEachLoopsIterateValuesNestedAndBreak(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `var out = [];
for each (var a in [[1, 2], [3]]) {
  for each (b in a) { if (b == 2) continue; out.push(b); }
}
for each (let v in {x: 'p', y: 'q'}) { out.push(v); if (v == 'p') break; }
for each (obx in msg['OBX']) out.push(obx['OBX.3']['OBX.3.1'].toString());
for each (var none in msg['ZZZ']) out.push('never');
return out.join(',');`, true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "1,3,p,WBC,HGB,PLT", string(res.Payload))
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
