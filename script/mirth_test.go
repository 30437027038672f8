package script

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
)

// Mirth scripts as channels hold them, run unchanged.

func TestMirthReadsE4XPathsAsMirthDoes(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `
var out = [];
out.push(msg['PID']['PID.5']['PID.5.1'].toString());
out.push(msg.PID['PID.3']['PID.3.4'].toString());
out.push(msg['OBX'].length());
out.push(msg['OBX'][1]['OBX.3']['OBX.3.1'].toString());
out.push(msg['ZZZ']['ZZZ.1'].toString() === '');
out.push(msg['ZZZ'].length());
out.push(msg['MSH']['MSH.9']['MSH.9.2'].text());
out.push(msg['MSH']['MSH.1'].toString() + msg['MSH']['MSH.2'].toString());
out.push(msg['PID']['PID.8']['PID.8.1'] == 'M');
out.push(JSON.stringify({name: msg['PID']['PID.5']['PID.5.2']}));
return out.join('|');
`, true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, `SMITH|HOSP|3|HGB|true|0|R01||^~\&|true|{"name":"JOHN"}`, string(res.Payload))
}

func TestMirthForEachLoopsOverSegments(t *testing.T) {
	e := engine(t, Options{})
	in := &Input{Message: parse(t, oru)}
	_, err := run(t, e, Step, `
var n = 0;
for each (var obx in msg['OBX']) {
  if (obx['OBX.11']['OBX.11.1'].toString() == 'D') { obx['OBX.11']['OBX.11.1'] = 'F'; }
  n++;
}
for each (seg in msg.children()) { if (seg.name().toString() == 'OBR') { channelMap.put('order', seg['OBR.2']['OBR.2.1'].toString()); } }
channelMap.put('count', n);
$c('first', msg['OBX'][0]['OBX.5']['OBX.5.1'].toString());
`, true, in)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"count": "3", "order": "ORD1", "first": "7.1"}, in.Vars)
	assert.Equal(t, "F", in.Message.ValueString(hl7.MustParsePath("OBX[3]-11")))
	assert.Equal(t, "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1", string(firstSegment(in.Message)))
}

func firstSegment(m *hl7.Message) []byte {
	for s := range m.Segments() {
		return s.Bytes()
	}
	return nil
}

func TestMirthAssignmentCreatesDeletesAndAppends(t *testing.T) {
	e := engine(t, Options{})
	in := &Input{Message: parse(t, oru)}
	_, err := run(t, e, Step, `
msg['PID']['PID.5']['PID.5.1'] = 'JONES';
msg['PID']['PID.13']['PID.13.1'] = '555-0100';
delete msg['PID']['PID.7'];
delete msg['OBX'][2];
var z = createSegment('ZPI', msg);
z['ZPI.1']['ZPI.1.1'] = 'x';
z['ZPI.3'] = 'y^z';
msg['PV1']['PV1.2']['PV1.2.1'] = 'I';
`, true, in)
	require.NoError(t, err)
	got := string(in.Message.Bytes())
	assert.Equal(t, "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01|C1|P|2.5.1\r"+
		"PID|1||MRN123^^^HOSP^MR||JONES^JOHN^Q|||M|||||555-0100\r"+
		"OBR|1|ORD1||CBC^Complete blood count\r"+
		"OBX|1|NM|WBC^White cells||7.1|10*9/L|||||F\r"+
		"OBX|2|NM|HGB^Hemoglobin||13.5|g/dL|||||F\r"+
		"ZPI|x||y^z\r"+
		"PV1||I\r", got)
}

func TestMirthLeavesAMessageItDidNotChangeByteForByte(t *testing.T) {
	e := engine(t, Options{})
	raw := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\nPID|1||X\\T\\Y||A^B\n" // LF terminators, an escape
	in := &Input{Message: parse(t, raw)}
	_, err := run(t, e, Step, "var x = msg['PID']['PID.3']['PID.3.1'].toString(); channelMap.put('id', x);", true, in)
	require.NoError(t, err)
	assert.Equal(t, raw, string(in.Message.Bytes()))
	assert.Equal(t, `X\T\Y`, in.Vars["id"], "Mirth scripts see raw text, escapes as written")
}

func TestMirthTemplateIsTheOutboundMessage(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `
tmp['PID']['PID.3']['PID.3.1'] = msg['PID']['PID.3']['PID.3.1'].toString();
tmp['PID']['PID.5'] = msg['PID']['PID.5'];
`, true, &Input{Message: parse(t, oru), Template: "MSH|^~\\&|HUB||EMR||||ADT^A08|X|P|2.5\rPID|1"})
	require.NoError(t, err)
	assert.Equal(t, "MSH|^~\\&|HUB||EMR||||ADT^A08|X|P|2.5\rPID|1||MRN123||SMITH^JOHN^Q\r", string(res.Payload))

	res, err = run(t, e, Encoder, `tmp.mrn = msg['PID']['PID.3']['PID.3.1'].toString(); tmp.tests = []; for each (o in msg.OBX) tmp.tests.push(o['OBX.3']['OBX.3.1'].toString());`, true,
		&Input{Message: parse(t, oru), Template: `{"mrn": "", "tests": null}`})
	require.NoError(t, err)
	assert.JSONEq(t, `{"mrn":"MRN123","tests":["WBC","HGB","PLT"]}`, string(res.Payload))
}

func TestMirthJavaHelpers(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `
var s = new java.lang.String(msg['PID']['PID.5']['PID.5.1'].toString());
var out = [s.length(), s.toLowerCase().toString(), s.equals('SMITH'), StringUtils.isBlank('  '), StringUtils.leftPad('7', 3, '0'),
  DateUtil.convertDate('yyyyMMdd', 'MM/dd/yyyy', msg['PID']['PID.7']['PID.7.1'].toString()),
  UUIDGenerator.getUUID().length, $('nothing') === ''];
logger.info('ok');
return out.join(',');
`, true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "5,smith,true,true,007,01/01/1970,36,true", string(res.Payload))
}

func TestMirthFilterReturnsABoolean(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Condition, "if (msg['MSH']['MSH.9']['MSH.9.1'].toString() == 'ORU') {\n return true;\n}\nreturn false;", true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.True(t, res.Matched)
}

func TestMirthToStringOfAFieldWithComponentsIsItsXML(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, "return msg['PID']['PID.8'].toString()", true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "<PID.8>\n  <PID.8.1>M</PID.8.1>\n</PID.8>", string(res.Payload), "as in Mirth: a field's text is in its .1")
}

// A list a script holds keeps its elements when their parent changes
// around them: a field read before a sibling is deleted, an element of a
// `for each` before an element is added, each still reads what it read.
func TestMirthAListKeepsItsElementsWhenTheirParentChanges(t *testing.T) {
	e := engine(t, Options{})
	res, err := run(t, e, Encoder, `
var name = msg['PID']['PID.5'];
var second = msg['OBX'][1];
delete msg['PID']['PID.3'];
msg['PID']['PID.2']['PID.2.1'] = 'X';
var out = [name['PID.5.1'].toString(), second['OBX.3']['OBX.3.1'].toString()];
for each (obx in msg['OBX']) {
  if (obx['OBX.1'].toString() == '1') { msg['OBX'][3] = 'OBX|4'; }
  out.push(obx['OBX.3']['OBX.3.1'].toString());
}
return out.join('|');
`, true, &Input{Message: parse(t, oru)})
	require.NoError(t, err)
	assert.Equal(t, "SMITH|HGB|WBC|HGB|PLT", string(res.Payload))
}
