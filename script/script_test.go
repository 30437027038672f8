package script

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
)

const oru = "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1\r" +
	"PID|1||MRN123^^^HOSP^MR||SMITH^JOHN^Q||19700101|M\r" +
	"OBR|1|ORD1||CBC^Complete blood count\r" +
	"OBX|1|NM|WBC^White cells||7.1|10*9/L|||||F\r" +
	"OBX|2|NM|HGB^Hemoglobin||13.5|g/dL|||||F\r" +
	"OBX|3|NM|PLT^Platelets||250|10*9/L|||||D\r"

func engine(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := NewEngine(o)
	require.NoError(t, err)
	return e
}

func parse(t testing.TB, s string) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse([]byte(s))
	require.NoError(t, err)
	return m
}

func run(t testing.TB, e *Engine, kind Kind, src string, mirth bool, in *Input) (Result, error) {
	t.Helper()
	s, err := e.Compile("test.js", kind, src, mirth)
	require.NoError(t, err)
	return s.Run(in)
}

func TestAStepReadsAndWritesByPathAndSetsVariables(t *testing.T) {
	e := engine(t, Options{})
	in := &Input{Message: parse(t, oru)}
	_, err := run(t, e, Step, `
var name = msg.get('PID-5.1') + ', ' + msg.get('PID-5.2');
msg.set('PID-5.1', msg.get('PID-5.1').toLowerCase());
var abnormal = 0;
msg.segments('OBX').forEach(function (obx) {
  if (Number(obx.get('5')) > 100) { obx.set('8', 'H'); abnormal++; }
});
vars.name = name;
vars.abnormal = abnormal;
log.info('done', abnormal);
`, false, in)
	require.NoError(t, err)
	assert.Equal(t, "smith", in.Message.ValueString(hl7.MustParsePath("PID-5.1")))
	assert.Equal(t, "H", in.Message.ValueString(hl7.MustParsePath("OBX[3]-8")))
	assert.Equal(t, "", in.Message.ValueString(hl7.MustParsePath("OBX[1]-8")))
	assert.Equal(t, map[string]string{"name": "SMITH, JOHN", "abnormal": "1"}, in.Vars)
}

func TestAConditionIsAnExpressionOrABody(t *testing.T) {
	e := engine(t, Options{})
	for src, want := range map[string]bool{
		"msg.get('MSH-9.1') == 'ORU'":                              true,
		"msg.get('PID-8') === 'F'":                                 false,
		"if (msg.count('OBX') > 2) { return true; }\nreturn false": true,
		"return msg.all('OBX-5').length == 2":                      false, // 3
	} {
		res, err := run(t, e, Condition, src, false, &Input{Message: parse(t, oru)})
		require.NoError(t, err, src)
		assert.Equal(t, want, res.Matched, src)
	}
}

func TestAnEncoderReturnsThePayload(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `return {mrn: msg.get('PID-3.1'), tests: msg.all('OBX-3.1'), ward: vars.ward}`, false,
		&Input{Message: parse(t, oru), Vars: map[string]string{"ward": "4B"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"mrn":"MRN123","tests":["WBC","HGB","PLT"],"ward":"4B"}`, string(res.Payload))

	res, err = run(t, e, Encoder, `return 'MRN=' + msg.get('PID-3.1')`, false, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "MRN=MRN123", string(res.Payload))

	_, err = run(t, e, Encoder, `var x = 1;`, false, &Input{Message: parse(t, oru)})
	assert.ErrorContains(t, err, "returned nothing")
}

func TestASyntaxErrorHasTheScriptsLineAndColumn(t *testing.T) {
	e := engine(t, Options{})
	_, err := e.Compile("scripts/adt.js", Step, "var a = 1;\nvar b = ;\n", false)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "scripts/adt.js", se.Script)
	assert.Equal(t, 2, se.Line)
	assert.Equal(t, 9, se.Column)
	assert.Contains(t, se.Error(), "syntax error")

	_, err = e.Compile("inline", Step, "msg.set('PID-5', 'x'))", false)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 1, se.Line)
	assert.Equal(t, 22, se.Column, "the column is the script's, not the wrapper's")
}

func TestAThrownErrorNamesThePositionButNeverTheMessage(t *testing.T) {
	e := engine(t, Options{})
	_, err := run(t, e, Step, "var mrn = msg.get('PID-3.1');\n  throw new Error('bad MRN ' + mrn);", false, &Input{Message: parse(t, oru)})
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 2, se.Line)
	assert.Equal(t, 9, se.Column, "where the Error was made")
	assert.NotContains(t, se.Error(), "MRN123", "the error is logged and kept: no values")
	assert.Contains(t, se.Error(), "uncaught Error")
	assert.Contains(t, se.Detail, "MRN123", "route test shows what was thrown")
}

func TestTheSandboxHasNoEvalNoFunctionConstructorNoModules(t *testing.T) {
	e := engine(t, Options{})
	for _, src := range []string{
		"eval('1')",
		"new Function('return 1')()",
		"(function(){}).constructor('return 1')()",
		"Object.getPrototypeOf(function*(){}).constructor('yield 1')",
		"require('fs')",
		"setTimeout(function(){}, 1)",
		"'x'.repeat(1 << 30)",
		"new Array(1e9)",
	} {
		_, err := run(t, e, Step, src, false, &Input{Message: parse(t, oru)})
		assert.Error(t, err, src)
	}
}

func TestLimitsInterruptARunawayScriptAndTheRuntimeRecovers(t *testing.T) {
	e := engine(t, Options{Limits: Limits{Time: 200 * time.Millisecond, Memory: 64 << 20, Stack: 200}})
	cases := map[string]string{
		"while (true) {}": "time limit",
		"function f(n) { return f(n + 1) + 1 }\nf(0)":                                                "call stack",
		"var a = []; while (true) { a.push('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' + a.length); }": "limit",
		"var s = 'x'; while (true) { s = s + s; }":                                                   "limit",
	}
	for src, want := range cases {
		_, err := run(t, e, Step, src, false, &Input{Message: parse(t, oru)})
		var se *Error
		require.ErrorAs(t, err, &se, src)
		assert.Contains(t, se.Reason, want, src)
		assert.NotZero(t, se.Line, src)
		// The next message flows.
		res, err := run(t, e, Condition, "msg.get('MSH-10') == 'C1'", false, &Input{Message: parse(t, oru)})
		require.NoError(t, err)
		assert.True(t, res.Matched)
	}
}

func TestNothingOfOneMessageIsLeftForTheNext(t *testing.T) {
	e := engine(t, Options{})
	s, err := e.Compile("leak.js", Step, "if (typeof seen !== 'undefined') { throw new Error('leaked'); }\nseen = msg['PID']['PID.3']['PID.3.1'].toString();", true)
	require.NoError(t, err)
	for range 3 {
		_, err := s.Run(&Input{Message: parse(t, oru)})
		require.NoError(t, err)
	}
	_, err = run(t, e, Step, "leaked = 1", false, &Input{Message: parse(t, oru)})
	assert.Error(t, err, "a strict script cannot create globals")
}

func TestLibrariesAreSharedFunctions(t *testing.T) {
	e := engine(t, Options{Libraries: []Library{{Name: "lib.js", Source: "function fullName(m) { return m.get('PID-5.2') + ' ' + m.get('PID-5.1'); }"}},
		Tables: map[string]map[string]string{"sex": {"M": "male"}}})
	res, err := run(t, e, Encoder, "return fullName(msg) + '/' + lookup('sex', msg.get('PID-8')) + '/' + lookup('sex', 'X', 'unknown')", false, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "JOHN SMITH/male/unknown", string(res.Payload))

	_, err = NewEngine(Options{Libraries: []Library{{Name: "bad.js", Source: "function ("}}})
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "bad.js", se.Script)
}

func TestHelpersFormatDatesAndMakeUUIDs(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, "return formatDate(msg.get('PID-7'), 'yyyy-MM-dd') + ' ' + uuid().length + ' ' + now().length", false, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "1970-01-01 36 14", string(res.Payload))
}

func TestRouteTestCollectsLogLines(t *testing.T) {
	e := engine(t, Options{})
	var lines []LogLine
	_, err := run(t, e, Step, "log.warn('checked', msg.count('OBX'))", false, &Input{Message: parse(t, oru), Log: &lines})
	require.NoError(t, err)
	assert.Equal(t, []LogLine{{Script: "test.js", Level: "warn", Text: "checked 3"}}, lines)
}

func TestAConditionCannotChangeTheMessage(t *testing.T) {
	e := engine(t, Options{})
	m := parse(t, oru)
	_, err := run(t, e, Condition, "msg.set('PID-5.1', 'X') || true", false, &Input{Message: m})
	assert.ErrorContains(t, err, "uncaught TypeError")
	assert.Equal(t, "SMITH", m.ValueString(hl7.MustParsePath("PID-5.1")))
}

func TestVelocityFillsPlaceholdersAndLeavesUnknownOnes(t *testing.T) {
	vars := map[string]string{"mrn": "MRN123", "message.encodedData": "MSH|x"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	assert.Equal(t, "<p id=\"MRN123\">MSH|x</p> ${nope}  $5.00", Velocity(`<p id="${mrn}">${message.encodedData}</p> ${nope} $!{nope} $5.00`, lookup))
	assert.Len(t, Velocity("${UUID}", nil), 36)
	assert.Equal(t, time.Now().Format("2006"), Velocity("${date.get('yyyy')}", nil))
	assert.Equal(t, "${unclosed", Velocity("${unclosed", lookup))
}

// A script that throws on every message reuses its runtime; one that hits
// a limit gets a new one.
func TestAThrowingScriptKeepsItsRuntime(t *testing.T) {
	e := engine(t, Options{Limits: Limits{Stack: 50}})
	before := e.made.Load()
	s, err := e.Compile("throws.js", Step, "throw new Error('no')", false)
	require.NoError(t, err)
	for range 50 {
		_, err := s.Run(&Input{Message: parse(t, oru)})
		require.Error(t, err)
	}
	assert.LessOrEqual(t, e.made.Load()-before, int64(1), "no runtime made a message")
	deep, err := e.Compile("deep.js", Step, "function f() { return f() + 1 } f()", false)
	require.NoError(t, err)
	_, err = deep.Run(&Input{Message: parse(t, oru)})
	require.Error(t, err)
	_, err = s.Run(&Input{Message: parse(t, oru)})
	require.Error(t, err)
	assert.Greater(t, e.made.Load()-before, int64(0), "the runtime out of stack was dropped")
}

func TestThrowingNullNamesNothing(t *testing.T) {
	e := engine(t, Options{})
	_, err := run(t, e, Step, "throw null", false, &Input{Message: parse(t, oru)})
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Reason, "threw null", "not a host panic")
}

// Segment objects and short values are reused run after run for speed:
// within a run every segment handed out stays itself, and a run sees
// only its own message's values.
func TestSegmentsAndValuesAreNeverSharedWithinARunOrAcrossMessages(t *testing.T) {
	e := engine(t, Options{})
	src := `var obx = msg.segments('OBX'); var pid = msg.segments('PID'); var all = msg.segments();
vars.first = obx[0].get('3.1') + '/' + obx[2].get('3.1') + '/' + pid[0].get('5.1') + '/' + all[0].name + '/' + obx[1].index;
vars.flag = obx[2].get('11') + obx[0].get('11');`
	s, err := e.Compile("pool.js", Step, src, false)
	require.NoError(t, err)
	for _, c := range []struct{ msg, first, flag string }{
		{oru, "WBC/PLT/SMITH/MSH/2", "DF"},
		{strings.NewReplacer("WBC", "NA", "PLT", "K", "SMITH", "JONES", "|D\r", "|C\r").Replace(oru), "NA/K/JONES/MSH/2", "CF"},
	} {
		in := &Input{Message: parse(t, c.msg), Vars: map[string]string{}}
		_, err := s.Run(in)
		require.NoError(t, err)
		assert.Equal(t, c.first, in.Vars["first"])
		assert.Equal(t, c.flag, in.Vars["flag"])
	}
	assert.EqualValues(t, 1, e.made.Load(), "one runtime served both messages, so its pool was reused")
}

// A segment object reads its segment in place only while no segment has
// been added or removed: after that it is the n-th segment of its name
// again, as it always was.
func TestASegmentObjectFollowsTheMessageAfterSegmentsAreAddedOrRemoved(t *testing.T) {
	e := engine(t, Options{})
	in := &Input{Message: parse(t, oru)}
	_, err := run(t, e, Step, `
var obx = msg.segments('OBX');
vars.before = obx[0].get('3.1') + '/' + obx[1].get('3.1');
msg.delete('OBX[1]');
vars.afterDelete = obx[0].get('3.1') + '/' + obx[1].get('3.1') + '/' + obx[2].get('3.1');
msg.addSegment('OBX|0|ST|NEW^New', 'OBR');
vars.afterAdd = obx[0].get('3.1') + '/' + obx[1].get('3.1');
msg.setText(msg.text().replace('NEW^New', 'TXT^Text'));
vars.afterText = obx[0].get('3.1');
obx[1].set('3.1', 'SET');
`, false, in)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"before": "WBC/HGB", "afterDelete": "HGB/PLT/", "afterAdd": "NEW/HGB", "afterText": "TXT",
	}, in.Vars)
	assert.Equal(t, "SET", in.Message.ValueString(hl7.MustParsePath("OBX[2]-3.1")))
}

// A segment object a script keeps in a global reads the message running
// now, never the one it was made for.
func TestASegmentObjectKeptPastItsRunReadsTheMessageRunningNow(t *testing.T) {
	e := engine(t, Options{})
	s, err := e.Compile("keep.js", Step, `
if (globalThis.kept === undefined) { globalThis.kept = msg.segments('OBX')[0]; }
vars.seen = globalThis.kept.get('3.1');`, false)
	require.NoError(t, err)
	in := &Input{Message: parse(t, oru)}
	_, err = s.Run(in)
	require.NoError(t, err)
	require.Equal(t, "WBC", in.Vars["seen"])
	in = &Input{Message: parse(t, strings.Replace(oru, "WBC^White", "NA^Sodium", 1))}
	_, err = s.Run(in)
	require.NoError(t, err)
	assert.Equal(t, "NA", in.Vars["seen"])
}

// Field values share the run's chunks of bytes: many of them, long and
// short, repeated and not, each reads as its own value to the end.
func TestManyFieldValuesInARunKeepTheirOwnText(t *testing.T) {
	var b strings.Builder
	b.WriteString("MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1\r")
	var want []string
	for i := range 120 {
		v := strings.Repeat(string(rune('a'+i%26)), 1+i%40) + "-" + string(rune('0'+i%10))
		if i%7 == 0 {
			v = "NM" // repeated
		}
		want = append(want, v)
		b.WriteString("OBX|" + string(rune('0'+i%10)) + "|" + v + "\r")
	}
	e := engine(t, Options{})
	for range 2 { // and again on the same runtime
		in := &Input{Message: parse(t, b.String())}
		_, err := run(t, e, Step, `var got = [];
msg.segments('OBX').forEach(function (obx) { got.push(obx.get('2')); });
for (var i = 1, n = got.length; i <= n; i++) { got.push(msg.get('OBX[' + i + ']-2')); }
vars.got = got.join(',');`, false, in)
		require.NoError(t, err)
		assert.Equal(t, strings.Join(append(slices.Clone(want), want...), ","), in.Vars["got"])
	}
}
