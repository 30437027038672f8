package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/ingest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// importMsg is an ADT with control ID id; the patient name is PHI-like on purpose.
func importMsg(id, extra string) string {
	return "MSH|^~\\&|OLDEMR|HOSP|NEWEMR|HOSP|20190301120000||ADT^A08^ADT_A01|" + id + "|P|2.5.1\rEVN|A08|20190301120000\rPID|1||MRN" + id + "^^^H^MR||Qwertyson^Ina" + extra + "\rPV1|1|I\r"
}

// importFolder writes a migration folder: a batch with a refused message,
// a duplicate and a reused control ID; a file that is not HL7; a hidden file.
func importFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	noType := strings.Replace(importMsg("M3", ""), "ADT^A08^ADT_A01", "", 1)
	batch := "FHS|^~\\&|OLDEMR\rBHS|^~\\&\r" + importMsg("M1", "") + importMsg("M2", "") + noType + importMsg("M1", "") + importMsg("M2", "^B") + "BTS|5\rFTS|1\r"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.hl7"), []byte(batch), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "b.hl7"), []byte(importMsg("M4", "")), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("PID|1||X||Qwertyson^Ina\r"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".hidden.hl7"), []byte("garbage"), 0o644))
	return dir
}

func TestImportValidateOnlyReportsWhatACleanupMustFix(t *testing.T) {
	dir := importFolder(t)
	csvReport := filepath.Join(t.TempDir(), "report.csv")
	stdout, stderr, code := runCmd(t, "import", dir, "--validate-only", "--report", csvReport, "--progress", "0")
	assert.Equal(t, 1, code, "invalid messages fail the run; stderr: %s", stderr)
	assert.Contains(t, stdout, "files 3 (1 refused whole), messages 6: valid 5, invalid 1")
	assert.Contains(t, stdout, "invalid by code: 101 (Required field missing) 1")
	assert.Contains(t, stdout, "duplicates by content: 1")
	assert.Contains(t, stdout, "control IDs reused for other content: 1")

	assert.Contains(t, stdout, "patients whose demographics conflict (one identifier, another name, birth date or sex): 1")
	assert.Contains(t, stdout, "types: ADT^A08 5")

	raw, err := os.ReadFile(csvReport)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	require.Len(t, lines, 4, string(raw))
	assert.Contains(t, string(raw), filepath.Join(dir, "a.hl7")+",4,M2,0,PID,demographics conflict: the same patient identifier as "+filepath.Join(dir, "a.hl7")+":7 with another name (PID-5)")
	assert.Equal(t, "file,index,control_id,code,location,reason", lines[0])
	assert.Contains(t, string(raw), filepath.Join(dir, "a.hl7")+",2,M3,101,MSH-9.1,")
	assert.Contains(t, string(raw), filepath.Join(dir, "notes.txt")+",-1,")
	for _, out := range []string{string(raw), stdout, stderr} {
		assert.NotContains(t, out, "Qwertyson", "no field values")
	}

	jsonReport := filepath.Join(t.TempDir(), "report.json")
	_, _, code = runCmd(t, "import", filepath.Join(dir, "sub"), "--validate-only", "--report", jsonReport, "--progress", "0")
	assert.Equal(t, 0, code, "a folder of valid messages passes")
	var s ingest.Survey
	b, err := os.ReadFile(jsonReport)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &s))
	assert.Equal(t, 1, s.Valid)

	_, _, code = runCmd(t, "import", dir)
	assert.Equal(t, 2, code, "neither --validate-only nor --to")
}

func TestImportFeedsAReceiverAndResumes(t *testing.T) {
	outDir := t.TempDir()
	addr := startListen(t, "--out", outDir)
	dir := t.TempDir()
	var all strings.Builder
	for i := 1; i <= 5; i++ {
		all.WriteString(importMsg(fmt.Sprintf("F%d", i), ""))
	}
	file := filepath.Join(dir, "five.hl7")
	require.NoError(t, os.WriteFile(file, []byte(all.String()), 0o644))
	state := filepath.Join(t.TempDir(), "import.state")

	// An earlier run was interrupted after two messages: its state says so.
	stdout, _, code := runCmd(t, "import", file, "--validate-only", "--progress", "0")
	require.Equal(t, 0, code, stdout)
	digest := fileDigest(t, file)
	require.NoError(t, os.WriteFile(state, []byte(fmt.Sprintf(`{%q: 2}`, digest)), 0o644))

	stdout, stderr, code := runCmd(t, "import", file, "--to", addr, "--state", state, "--progress", "0")
	require.Equal(t, 0, code, "stdout %s stderr %s", stdout, stderr)
	assert.Contains(t, stdout, "sent 3 (not AA/CA: 0), already sent by an earlier run: 2")
	names, _ := received(t, outDir)
	assert.Len(t, names, 3, "only the messages after the state's mark were sent")

	stdout, _, code = runCmd(t, "import", file, "--to", addr, "--state", state, "--progress", "0")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "sent 0 (not AA/CA: 0), already sent by an earlier run: 5", "run again: nothing left")
}

func fileDigest(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// import --to URL feeds a real serve's HTTP source, --batch messages per
// request, each ACK checked; a message the source refuses is counted and
// the rest go on; a second run sends nothing.
func TestImportFeedsAnHTTPSource(t *testing.T) {
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	addr, adminAddr := freePort(t), freePort(t)
	tokenFile := filepath.Join(t.TempDir(), "webin.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("import-token-0123456789\n"), 0o600))
	victor := writeToken(t, t.TempDir(), "victor")
	cfg := fmt.Sprintf(`
data_dir: %s
admin: {addr: "%s", tokens: [{name: victor, role: viewer, token_file: %s}]}
sources:
  - {name: webin, type: http, addr: "%s", path: /hl7, accept_types: [ADT], tokens: [{name: migration, token_file: %s}]}
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s"}]
`, t.TempDir(), adminAddr, victor, addr, tokenFile, downstream)
	stop, stderr := startServe(t, cfg)
	defer stop()
	var all strings.Builder
	for i := 1; i <= 7; i++ {
		m := importMsg(fmt.Sprintf("H%d", i), "")
		if i == 4 { // valid HL7, but a type the source does not accept: AR
			m = strings.Replace(m, "ADT^A08^ADT_A01", "ORU^R01", 1)
		}
		all.WriteString(m)
	}
	file := filepath.Join(t.TempDir(), "seven.hl7")
	require.NoError(t, os.WriteFile(file, []byte(all.String()), 0o644))
	state := filepath.Join(t.TempDir(), "import.state")
	url := "http://" + addr + "/hl7"
	waitListening(t, addr, "the HTTP source")

	stdout, errOut, code := runCmd(t, "import", file, "--to", url, "--batch", "3", "--token-file", tokenFile, "--state", state, "--progress", "0")
	assert.Equal(t, 1, code, "one message refused: exit 1; %s %s", stdout, errOut)
	assert.Contains(t, stdout, "sent 7 (not AA/CA: 1), already sent by an earlier run: 0")
	require.Eventually(t, func() bool { names, _ := received(t, outDir); return len(names) == 6 }, 10*time.Second, 10*time.Millisecond,
		"waiting for the 6 accepted messages downstream; stderr: %s", stderr)

	stdout, _, code = runCmd(t, "import", file, "--to", url, "--token-file", tokenFile, "--state", state, "--progress", "0")
	assert.Equal(t, 0, code, stdout)
	assert.Contains(t, stdout, "sent 0 (not AA/CA: 0), already sent by an earlier run: 7")

	// Each message the HTTP source split from a batch is found by the
	// SHA-256 of the bytes import sent.
	stdout, _, code = runCmd(t, "import", file, "--reconcile", "--server", "http://"+adminAddr, "--api-token-file", victor, "--settle", "30s", "--progress", "0")
	assert.Equal(t, 1, code, "one refused: %s", stdout)
	assert.Contains(t, stdout, "reconciliation: in 7 = stored 6 + not stored 1 (invalid, not sent 0; refused by the broker 1; not found 0)")
	assert.Contains(t, stdout, "destination emr: copies 6 = delivered 6 + dead-lettered 0")

	_, errOut, code = runCmd(t, "import", file, "--to", url, "--state", filepath.Join(t.TempDir(), "s"), "--progress", "0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--token-file")
}

// With --config, the summary says what the routes would do: copies by
// destination, messages no route takes, and transforms that would fail.
func TestImportValidateOnlyWithRoutes(t *testing.T) {
	dir := t.TempDir()
	oru := strings.Replace(importMsg("R1", ""), "ADT^A08^ADT_A01", "ORU^R01", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "feed.hl7"), []byte(importMsg("A1", "")+importMsg("A2", "")+importMsg("A1", "")+oru), 0o644))
	cfg := writeConfig(t, `
listeners: [{name: old, addr: "127.0.0.1:0"}]
routes:
  - {name: adt, when: {type: [ADT]}, to: [emr, lab]}
  - {name: broken, when: {type: [ADT]}, transform: [{format_date: PID-5.1, to_format: yyyy-MM-dd}], to: [archive]}
destinations:
  - {name: emr, type: mllp, addr: "127.0.0.1:1"}
  - {name: lab, type: mllp, addr: "127.0.0.1:2"}
  - {name: archive, type: mllp, addr: "127.0.0.1:3"}
`)
	report := filepath.Join(t.TempDir(), "r.json")
	stdout, stderr, code := runCmd(t, "import", dir, "--validate-only", "--config", cfg, "--report", report, "--progress", "0")
	require.Equal(t, 0, code, "%s %s", stdout, stderr)
	assert.Contains(t, stdout, "routing (per --config): copies by destination: emr 2, lab 2; no route: 1; transform failed: broken 2")
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"copies_by_destination": {`)
	assert.NotContains(t, string(b), "Qwertyson")
}

// The cleanup report finds what a migration must fix before it starts:
// a date that does not exist, a sex outside HL7 table 0001, a missing
// segment, and one patient's conflicting demographics, each where it is
// and never with the value.
func TestImportValidateOnlyFindsPlantedProblems(t *testing.T) {
	dir := t.TempDir()
	msg := func(id, mrn, name, birth, sex string) string {
		return "MSH|^~\\&|OLDEMR|HOSP|NEWEMR|HOSP|20190301120000||ADT^A08^ADT_A01|" + id + "|P|2.5.1\rEVN|A08|20190301120000\r" +
			"PID|1||" + mrn + "^^^H^MR||" + name + "||" + birth + "|" + sex + "\rPV1|1|I\r"
	}
	soon := time.Now().AddDate(0, 1, 0).Format("20060102")
	content := msg("C1", "P1", "Zyxwer^Ola", "19700101", "F") + msg("C2", "P2", "Vbnmer^Kai", "20190230", "M") +
		msg("C3", "P3", "Poiuyt^Lee", "19800101", "X") + msg("C4", "P1", "Zyxwer^Ola", "19700102", "F") +
		"MSH|^~\\&|OLDEMR|HOSP|NEWEMR|HOSP|20190301120000||ADT^A08^ADT_A01|C5|P|2.5.1\rPID|1||P5^^^H^MR||Lkjhgf^Uma\r" +
		msg("C6", "P6", "Qazwsx^Ed", "18500101", "M") + msg("C7", "P7", "Edcrfv^Flo", soon, "F") +
		strings.Replace(msg("C8", "P8", "Tgbyhn^Zo\xeb", "19900101", "F"), "|P|2.5.1", "|P|2.5.1||||||UNICODE UTF-8", 1) +
		strings.Replace(msg("C9", "P9", "Ujmik^Al", "19910101", "M"), "PV1|1|I", "PV1|1|I"+strings.Repeat("|", 42)+"20990101", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.hl7"), []byte(content), 0o644))
	report := filepath.Join(t.TempDir(), "cleanup.csv")
	people := filepath.Join(t.TempDir(), "demographics.csv")
	stdout, stderr, code := runCmd(t, "import", dir, "--validate-only", "--report", report, "--demographics", people, "--progress", "0")
	assert.Equal(t, 0, code, "validation: record stores them all; stderr: %s", stderr)
	assert.Contains(t, stdout, "validation against each message's HL7 version: 3 messages with problems")
	assert.Contains(t, stdout, "102 PID-7.1 1")
	assert.Contains(t, stdout, "103 PID-8 1")
	assert.Contains(t, stdout, "100 EVN 1")
	assert.Contains(t, stdout, "patients whose demographics conflict (one identifier, another name, birth date or sex): 1")
	assert.Contains(t, stdout, "dates out of range (before 1900, over two years ahead, or a birth after today): 3 (by place: PID-7.1 2, PV1-44.1 1)")
	assert.Contains(t, stdout, "charset problems (bytes that contradict MSH-18, or a character set not known): 1 messages")
	raw, err := os.ReadFile(report)
	require.NoError(t, err)
	rows := strings.Count(string(raw), "\n")
	assert.Equal(t, 1+4+1+3+1, rows, "the header, four validation problems, one conflict, three dates, one charset: exactly the plants\n%s", raw)
	for _, want := range []string{",1,C2,102,PID-7.1,validation: ", ",2,C3,103,PID-8,validation: ", ",4,C5,100,EVN,validation: required segment EVN is missing",
		",3,C4,0,PID,demographics conflict: the same patient identifier as " + filepath.Join(dir, "old.hl7") + ":1 with another birth date (PID-7)",
		",5,C6,102,PID-7.1,PID-7.1 (Time) is a date out of range (before 1900 or after ", ",6,C7,102,PID-7.1,PID-7.1 (Date/Time of Birth) is after the day of the survey",
		",8,C9,102,PV1-44.1,PV1-44.1 (Time) is a date out of range", ",7,C8,0,MSH-18,\"charset: bytes do not match UNICODE UTF-8: invalid UTF-8 in text declared UNICODE UTF-8 (first at byte 145, 1 in all)\""} {
		assert.Contains(t, string(raw), want)
	}
	info, err := os.Stat(people)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "patient data: the owner's only")
	conflicts := readCSV(t, people)
	require.Len(t, conflicts, 2)
	assert.Equal(t, []string{"P1^H", "birth date (PID-7)", filepath.Join(dir, "old.hl7"), "13", "4", "C4", "Zyxwer^Ola", "19700102", "F",
		filepath.Join(dir, "old.hl7"), "1", "1", "C1", "Zyxwer^Ola", "19700101", "F"}, conflicts[1], "the values, only here")
	for _, out := range []string{string(raw), stdout, stderr} {
		for _, value := range []string{"Zyxwer", "Vbnmer", "20190230", "19700102", "18500101", soon, "20990101", "Tgbyhn"} {
			assert.NotContains(t, out, value, "no values in the report")
		}
	}
}

// waitListening waits until something accepts connections at addr.
func waitListening(t *testing.T, addr, what string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "waiting for %s to listen at %s", what, addr)
}
