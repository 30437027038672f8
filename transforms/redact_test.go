package transforms

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const phiADT = "MSH|^~\\&|REG|HOSP|RESEARCH|UNI|20260114081530||ADT^A01^ADT_A01|R1|P|2.5.1\r" +
	"PID|1|OLD77|MRN555^^^HOSP^MR~990011^^^STATE^PI||Garcia^Lucia^M||19720315|F|Lucy^G||12 Elm St^^Springfield^IL^62704||(217)555-0199|(217)555-0100||||ACC321|123-45-6789|D1234567\r" +
	"NK1|1|Garcia^Pedro|SPO|12 Elm St^^Springfield^IL|(217)555-0123\r" +
	"NK1|2|Garcia^Ana|DAU\r" +
	"PV1|1|I|W2^201^B||||1234^Welby^Marcus||||||||||||VN888\r"

var phiValues = []string{"Garcia", "Lucia", "Pedro", "Ana", "Lucy", "Elm St", "555-01", "MRN555", "990011", "OLD77", "ACC321", "123-45-6789", "D1234567", "19720315", "VN888"}

func redacted(t *testing.T, spec RedactSpec, msg string) *hl7.Message {
	t.Helper()
	p, problems := Compile([]Spec{{Op: "redact", Options: &RedactOptions{Redact: spec}}}, Options{})
	require.Empty(t, problems)
	return apply(t, p, msg)
}

func TestRedactRemovesPHI(t *testing.T) {
	t.Setenv("TEST_REDACT_KEY", "a-research-feed-key-0001")
	m := redacted(t, RedactSpec{KeyEnv: "TEST_REDACT_KEY"}, phiADT)
	out := string(m.Bytes())
	for _, v := range phiValues {
		assert.NotContains(t, out, v)
	}
	assert.Equal(t, "REDACTED", get(t, m, "PID-5"))
	assert.Equal(t, "REDACTED", get(t, m, "NK1[2]-2"))
	assert.Equal(t, "", get(t, m, "PID-11"))
	assert.Equal(t, "", get(t, m, "PID-19"), "SSN cleared, not hashed")
	assert.Equal(t, "1972", get(t, m, "PID-7"), "birth date truncated to the year")
	assert.Equal(t, "HOSP", get(t, m, "PID-3[1].4"), "the assigning authority stays")
	assert.Equal(t, "MR", get(t, m, "PID-3[1].5"))
	mrn := get(t, m, "PID-3[1].1")
	assert.Len(t, mrn, 20)
	assert.Equal(t, "ADT^A01^ADT_A01", get(t, m, "MSH-9"), "the header is kept")
	assert.Equal(t, "Welby", get(t, m, "PV1-7.2"), "providers' names are not the patient's: kept")

	again := redacted(t, RedactSpec{KeyEnv: "TEST_REDACT_KEY"}, strings.Replace(phiADT, "|R1|", "|R2|", 1))
	assert.Equal(t, mrn, get(t, again, "PID-3[1].1"), "the same patient, the same pseudonym")
	t.Setenv("OTHER_KEY", "another-research-key-0002")
	other := redacted(t, RedactSpec{KeyEnv: "OTHER_KEY"}, phiADT)
	assert.NotEqual(t, mrn, get(t, other, "PID-3[1].1"), "another key, another pseudonym")
}

func TestRedactBirthDateShiftAndKeep(t *testing.T) {
	t.Setenv("TEST_REDACT_KEY", "a-research-feed-key-0001")
	m := redacted(t, RedactSpec{KeyEnv: "TEST_REDACT_KEY", BirthDate: "shift", ShiftDays: 30, Keep: []string{"names"}}, phiADT)
	shifted, err := time.Parse("20060102", get(t, m, "PID-7"))
	require.NoError(t, err)
	dob := time.Date(1972, 3, 15, 0, 0, 0, 0, time.UTC)
	assert.LessOrEqual(t, shifted.Sub(dob).Abs(), 30*24*time.Hour)
	assert.Equal(t, "Garcia", get(t, m, "PID-5.1"), "names kept when asked")
	m2 := redacted(t, RedactSpec{KeyEnv: "TEST_REDACT_KEY", BirthDate: "shift", ShiftDays: 30}, strings.Replace(phiADT, "|R1|", "|R2|", 1))
	assert.Equal(t, get(t, m, "PID-7"), get(t, m2, "PID-7"), "the same patient, the same shift")
}

func TestRedactProblems(t *testing.T) {
	t.Setenv("SHORT_KEY", "short")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "redact.key"), []byte("0123456789abcdef-from-a-file\n"), 0o600))
	_, problems := Compile([]Spec{
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{KeyEnv: "SHORT_KEY"}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{Keep: []string{"identifiers"}, BirthDate: "blur"}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{Keep: []string{"identifiers", "eyes"}}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{Key: "a-literal-key-written-in-yaml"}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{Key: "${env:HL7B_NO_SUCH_VARIABLE}"}}},
		{Op: "redact", Options: &RedactOptions{Redact: RedactSpec{Key: "${file:redact.key}"}}},
	}, Options{Dir: dir})
	keys := map[string]string{}
	for _, p := range problems {
		keys[p.Key] = p.Message
	}
	assert.Contains(t, keys["[0].redact.key"], "needs key")
	assert.Contains(t, keys["[1].redact.key_env"], "at least 16")
	assert.NotContains(t, keys["[1].redact.key_env"], "short", "the key itself is never shown")
	assert.Contains(t, keys["[2].redact.birth_date"], "blur")
	assert.Contains(t, keys["[3].redact.keep"], "eyes")
	assert.NotContains(t, keys, "[2].redact.key_env", "no key needed when nothing is hashed")
	assert.Contains(t, keys["[4].redact.key"], "never the key itself")
	assert.NotContains(t, keys["[4].redact.key"], "a-literal-key", "the key itself is never shown")
	assert.Equal(t, "environment variable HL7B_NO_SUCH_VARIABLE is not set", keys["[5].redact.key"])
	assert.NotContains(t, keys, "[6].redact.key", "a key read from a file relative to the config")
}
