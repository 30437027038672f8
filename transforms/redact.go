package transforms

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"github.com/hl7broker/hl7broker/internal/secret"
	"os"
	"slices"

	"github.com/hl7broker/hl7broker/hl7"
)

// RedactSpec de-identifies a message for test and research feeds. Names
// become REDACTED, addresses and phone numbers are cleared, identifiers
// are replaced by a keyed hash (the same patient gets the same pseudonym
// in every message, so records still link), social security and driver's
// licence numbers are cleared, and dates of birth are truncated to the
// year or shifted by a per-patient number of days. Providers' names are
// kept. Free text (NTE, OBX-5 of type TX/FT) is not touched: drop or clear
// it in other steps.
type RedactSpec struct {
	Key       string   `mapstructure:"key"`                               // the hash key as a reference: ${env:NAME} or ${file:PATH}
	KeyEnv    string   `mapstructure:"key_env"`                           // environment variable holding the hash key (older form of key: ${env:NAME})
	BirthDate string   `mapstructure:"birth_date" enum:"year,shift,keep"` // default year
	ShiftDays int      `mapstructure:"shift_days"`                        // shift: at most this many days either way (default 180)
	Keep      []string `mapstructure:"keep"`                              // categories left as they are: names, addresses, phones, identifiers
}

// The fields each category covers, in every segment of that name and
// every repetition.
var (
	redactNames       = []string{"PID-5", "PID-6", "PID-9", "NK1-2", "GT1-3", "GT1-4", "IN1-16", "IN2-7", "MRG-7"}
	redactAddresses   = []string{"PID-11", "PID-12", "NK1-4", "GT1-5", "IN1-19", "IN2-61"}
	redactPhones      = []string{"PID-13", "PID-14", "NK1-5", "NK1-6", "GT1-6", "GT1-7", "IN1-17"}
	redactIdentifiers = []string{"PID-2.1", "PID-3.1", "PID-4.1", "PID-18.1", "PID-21.1", "MRG-1.1", "MRG-2.1", "MRG-3.1", "PV1-19.1", "NK1-33.1", "GT1-2.1", "IN1-49.1"}
	redactCleared     = []string{"PID-19", "PID-20"} // SSN, driver's licence: no pseudonym either
	redactCategories  = []string{"names", "addresses", "phones", "identifiers"}
)

type redactStep struct {
	key        []byte
	names      []hl7.Path
	clear      []hl7.Path
	hash       []hl7.Path
	birthDate  string
	shiftDays  int
	birthPath  hl7.Path
	patientKey hl7.Path
}

func (s *redactStep) String() string { return "redact" }

// RedactOptions are the keys of redact.
type RedactOptions struct {
	Redact RedactSpec `mapstructure:"redact"`
}

var redactType = StepType[RedactOptions]{Name: "redact", Compile: func(s *RedactOptions, c *Compiler) Step {
	return c.compileRedact(s.Redact, c.opt.Dir)
}}

func (c *Compiler) compileRedact(r RedactSpec, dir string) Step {
	st := &redactStep{birthDate: r.BirthDate, shiftDays: r.ShiftDays,
		birthPath: hl7.MustParsePath("PID-7"), patientKey: hl7.MustParsePath("PID-3.1")}
	if st.birthDate == "" {
		st.birthDate = "year"
	}
	switch st.birthDate {
	case "year", "keep":
	case "shift":
		if st.shiftDays == 0 {
			st.shiftDays = 180
		}
	default:
		c.add("redact.birth_date", "%q is not year, shift or keep", r.BirthDate)
	}
	if st.shiftDays < 0 || st.shiftDays > 3650 {
		c.add("redact.shift_days", "must be 1 to 3650")
	}
	keep := map[string]bool{}
	for i, k := range r.Keep {
		if !slices.Contains(redactCategories, k) {
			c.add("redact.keep", "keep[%d] %q is not one of %v", i, k, redactCategories)
		}
		keep[k] = true
	}
	paths := func(list []string) []hl7.Path {
		var out []hl7.Path
		for _, p := range list {
			out = append(out, hl7.MustParsePath(p))
		}
		return out
	}
	if !keep["names"] {
		st.names = paths(redactNames)
	}
	if !keep["addresses"] {
		st.clear = append(st.clear, paths(redactAddresses)...)
	}
	if !keep["phones"] {
		st.clear = append(st.clear, paths(redactPhones)...)
	}
	if !keep["identifiers"] {
		st.hash = paths(redactIdentifiers)
		st.clear = append(st.clear, paths(redactCleared)...)
	}
	if len(st.hash) > 0 || st.birthDate == "shift" {
		switch {
		case r.Key != "" && r.KeyEnv != "":
			c.add("redact.key", "give key or key_env, not both")
		case r.Key != "" && !secret.IsRef(r.Key):
			c.add("redact.key", "must be a reference, ${env:NAME} or ${file:PATH}, never the key itself")
		case r.Key != "":
			k, err := secret.Expand(r.Key, dir)
			if err != nil {
				c.add("redact.key", "%s", err)
			} else if st.key = []byte(k); len(st.key) < 16 {
				c.add("redact.key", "the key must be at least 16 characters")
			}
		case r.KeyEnv == "":
			c.add("redact.key", "redact needs key: ${env:NAME} or ${file:PATH} holding the key for hashing identifiers")
		default:
			if st.key = []byte(os.Getenv(r.KeyEnv)); len(st.key) < 16 {
				c.add("redact.key_env", "$%s must hold a key of at least 16 characters", r.KeyEnv)
			}
		}
	}
	return st
}

func (s *redactStep) Apply(m *hl7.Message) error {
	// The birth date shift is derived from the patient's identifier before
	// that identifier is replaced.
	if err := s.redactBirthDate(m); err != nil {
		return err
	}
	for _, p := range s.names {
		if err := eachValue(m, p, func(q hl7.Path, v []byte) error { return m.Set(q, "REDACTED") }); err != nil {
			return err
		}
	}
	for _, p := range s.clear {
		if err := eachValue(m, p, func(q hl7.Path, _ []byte) error { return m.Clear(q) }); err != nil {
			return err
		}
	}
	for _, p := range s.hash {
		if err := eachValue(m, p, func(q hl7.Path, v []byte) error { return m.Set(q, s.pseudonym(v)) }); err != nil {
			return err
		}
	}
	return nil
}

// pseudonym is the keyed hash of a value: the same everywhere for the
// same key, and not reversible without it.
func (s *redactStep) pseudonym(v []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(v)
	return hex.EncodeToString(mac.Sum(nil)[:10])
}

func (s *redactStep) redactBirthDate(m *hl7.Message) error {
	if s.birthDate == "keep" || !m.Has(s.birthPath) {
		return nil
	}
	v := string(m.Value(s.birthPath))
	if v == "" {
		return nil
	}
	t, err := hl7.ParseTime(v)
	if err != nil {
		return m.Clear(s.birthPath) // not a date: nothing safe to keep
	}
	if s.birthDate == "year" {
		return m.Set(s.birthPath, t.Format("2006"))
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("birth-date-shift:"))
	mac.Write(m.Value(s.patientKey))
	n := int(binary.BigEndian.Uint32(mac.Sum(nil)) % uint32(2*s.shiftDays+1))
	shifted := t.AddDate(0, 0, n-s.shiftDays)
	return m.Set(s.birthPath, shifted.Format("20060102"))
}

// eachValue calls fn for every present, non-empty value p covers: each
// segment of that name and each repetition.
func eachValue(m *hl7.Message, p hl7.Path, fn func(hl7.Path, []byte) error) error {
	// Collect first: fn edits m, and the walk must not see its own edits.
	// The values are copied: an edit writes m's bytes in place.
	type hit struct {
		path  hl7.Path
		value []byte
	}
	var hits []hit
	for q, v := range m.Values(p) {
		if len(v) > 0 {
			hits = append(hits, hit{q, bytes.Clone(v)})
		}
	}
	for _, h := range hits {
		if err := fn(h.path, h.value); err != nil {
			return err
		}
	}
	return nil
}
