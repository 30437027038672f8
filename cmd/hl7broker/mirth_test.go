package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mirthTestdata = "../../mirth/testdata"

// mirth import writes a config that passes check, and route test on it
// writes each destination's payload as the Mirth channel would have sent
// it.
func TestMirthImportThenRouteTest(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runCmd(t, "mirth", "import", filepath.Join(mirthTestdata, "adt-feed.xml"), filepath.Join(mirthTestdata, "lab-chain.xml"), "--out", dir)
	require.Equal(t, 0, code, "everything translated (some with a difference): %s%s", stdout, stderr)
	assert.Contains(t, stdout, "translated with a difference")
	assert.FileExists(t, filepath.Join(dir, "report.txt"))
	secret, err := os.Stat(filepath.Join(dir, "secrets", "lab-out-results-db.password"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), secret.Mode().Perm(), "the database password from the export is kept out of the YAML")
	yaml, err := os.ReadFile(filepath.Join(dir, "hl7broker.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(yaml), "s3cret")

	stdout, _, code = runCmd(t, "check", "--config", filepath.Join(dir, "hl7broker.yaml"))
	require.Equal(t, 0, code, stdout)

	msgs := t.TempDir()
	adt := "MSH|^~\\&|REG|HOSP|HUB|HOSP|20260114081530||ADT^A01^ADT_A01|MSG1|P|2.5.1\rEVN|A01|20260114081500\r" +
		"PID|1||MRN100^^^HOSP^MR||Doe^Jane||19800101|F|||||(555)555-1234\rNK1|1|Doe^John|SPO\rNK1|2|Roe^Anna|CHD\rPV1|1|E|W2^201^B\r"
	oru := "MSH|^~\\&|LAB|LABFAC|HUB|HOSP|20260114120000||ORU^R01|R1|P|2.5.1\rPID|1||MRN7^^^LAB^MR||Roe^Rick\rOBR|1|ORD77||CBC\r" +
		"OBX|1|NM|WBC||12.5|10*9/L|4.0-11.0||||F\rOBX|2|NM|HGB||13.5|g/dL|12.0-16.0||||F\r"
	require.NoError(t, os.WriteFile(filepath.Join(msgs, "adt.hl7"), []byte(adt), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(msgs, "oru.hl7"), []byte(oru), 0o644))
	out := t.TempDir()
	stdout, stderr, code = runCmd(t, "route", "test", "--config", filepath.Join(dir, "hl7broker.yaml"), "--out", out, filepath.Join(msgs, "adt.hl7"))
	require.Equal(t, 0, code, stderr)
	_, _, code = runCmd(t, "route", "test", "--config", filepath.Join(dir, "hl7broker.yaml"), "--listener", "lab-in", "--out", out, filepath.Join(msgs, "oru.hl7"))
	require.Equal(t, 0, code)

	emr, err := os.ReadFile(filepath.Join(out, "adt-1-adt-feed-to-emr.hl7"))
	require.NoError(t, err, stdout)
	assert.Equal(t, "MSH|^~\\&|REG|HOSP|HUB|EMR|20260114081530||ADT^A01^ADT_A01|MSG1|P|2.5.1\rEVN|A01|20260114081500\r"+
		"PID|1||MRN100^^^HOSP^MR||DOE^Jane||19800101|F|||||(555)555-1234\rNK1|1|Doe^John|SPO\rNK1|2|Roe^Anna|CHD\rPV1|1|E|ER^201^B\r", string(emr),
		"the source transformer: a message builder step, an upper-cased name and a for each-free edit")
	portal, err := os.ReadFile(filepath.Join(out, "adt-1-adt-feed-portal-json.json"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"mrn":"MRN100","family":"DOE","given":"Jane","birthDate":"1980-01-01","phone":"5555551234","kin":["Doe","Roe"],"event":"A01"}`, string(portal),
		"mapper variables with a replacement, for each over NK1, DateUtil, and the JSON outbound template")
	archive, err := os.ReadFile(filepath.Join(out, "oru-1-lab-out-archive.hl7"))
	require.NoError(t, err)
	assert.Contains(t, string(archive), "OBX|1|NM|WBC||12.5|10*9/L|4.0-11.0|A|||F\r", "the channel writer's transformer ran on the way to Lab Out")
	assert.Contains(t, string(archive), "OBX|2|NM|HGB||13.5|g/dL|12.0-16.0||||F\r")
}

func TestMirthImportExitCodes(t *testing.T) {
	dir := t.TempDir()
	stdout, _, code := runCmd(t, "mirth", "import", filepath.Join(mirthTestdata, "server-config.xml"), "--out", dir)
	assert.Equal(t, 3, code, "written, with parts not translated")
	assert.Contains(t, stdout, "[not translated]")
	stdout, _, code = runCmd(t, "check", "--config", filepath.Join(dir, "hl7broker.yaml"))
	assert.Equal(t, 0, code, "what was written still passes check: %s", stdout)
	assert.FileExists(t, filepath.Join(dir, "scripts", "orders-legacy", "source-transformer.js.untranslated"), "the original is kept beside")

	bad := filepath.Join(t.TempDir(), "bad.xml")
	require.NoError(t, os.WriteFile(bad, []byte("<channel><name>broken</nam></channel>"), 0o644))
	stdout, _, code = runCmd(t, "mirth", "import", bad, "--out", t.TempDir())
	assert.Equal(t, 2, code, "nothing could be read")
	assert.True(t, strings.Contains(stdout, "not well-formed"), stdout)
}

// An HTTP Listener to an HTTP Sender whose body is a Velocity text around
// an HL7 outbound template the destination transformer fills in, and an
// SFTP File Writer behind Rule Builder rules joined by OR.
func TestMirthImportHTTPAndSFTPChannel(t *testing.T) {
	dir := t.TempDir()
	stdout, _, code := runCmd(t, "mirth", "import", filepath.Join(mirthTestdata, "orders-http.xml"), "--out", dir)
	require.Equal(t, 0, code, stdout)
	assert.Contains(t, stdout, "Mirth used PUT; hl7broker POSTs")
	yaml, err := os.ReadFile(filepath.Join(dir, "hl7broker.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(yaml), "type: sftp")
	assert.Contains(t, string(yaml), "addr: sftp.lab.example.org:2222")
	assert.Contains(t, string(yaml), "password: ${file:secrets/orders-http-lab-sftp.password}")
	assert.NotContains(t, string(yaml), "sftp-pass-from-mirth")

	msg := filepath.Join(t.TempDir(), "orm.hl7")
	require.NoError(t, os.WriteFile(msg, []byte("MSH|^~\\&|CPOE|MAIN|LAB|MAIN|20260114090000||ORM^O01|ORD1|P|2.5\r"+
		"PID|1||000123^^^MAIN^MR||Doe^Jane|||||||||||||ACCT9\rPV1|1|I|4W^12^A\rORC|NW|PLACER55\r"), 0o644))
	test := filepath.Join(t.TempDir(), "test.hl7")
	require.NoError(t, os.WriteFile(test, []byte("MSH|^~\\&|CPOE|TESTFAC|LAB|MAIN|20260114090000||ORM^O01|ORD2|P|2.5\rPID|1||77\r"), 0o644))
	out := t.TempDir()
	stdout, _, code = runCmd(t, "route", "test", "--config", filepath.Join(dir, "hl7broker.yaml"), "--out", out, msg, test)
	require.Equal(t, 0, code, stdout)
	body, err := os.ReadFile(filepath.Join(out, "orm-1-orders-http-billing-xml.xml"))
	require.NoError(t, err)
	assert.Equal(t, "<visit account=\"ACCT9\" ward=\"4W\">MSH|^~\\&|HUB||BILLING||||ORM^O01|1|P|2.5\rPID|1||123\rORC|NW|PLACER55\r</visit>", string(body),
		"a connector-scoped mapper with a default, message builders into the template, a replacement, Velocity")
	sent, err := os.ReadFile(filepath.Join(out, "orm-1-orders-http-lab-sftp.hl7"))
	require.NoError(t, err)
	original, _ := os.ReadFile(msg)
	assert.Equal(t, string(original), string(sent), "MSH-5 is LAB: sent as it came")
	assert.Contains(t, stdout, "unrouted: no route matched", "a test facility's order is filtered")
}
