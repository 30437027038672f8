package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
)

// Survey is what a migration's files hold, as a broker would see them:
// how many messages, which would be refused and why, and which repeat.
// It holds no field values: control IDs, codes and locations only.
type Survey struct {
	Files        int         `json:"files"`
	FilesRefused int         `json:"files_refused"` // not HL7 at all, or unreadable
	Messages     int         `json:"messages"`
	Valid        int         `json:"valid"`
	Invalid      int         `json:"invalid"`
	ByCode       map[int]int `json:"invalid_by_code"` // HL7 table 0357 code -> messages
	// DuplicateContent: messages byte for byte equal to an earlier one.
	DuplicateContent int `json:"duplicate_content"`
	// ReusedControlIDs: messages whose MSH-3, MSH-4 and MSH-10 equal an
	// earlier message's while the content differs (a corrected resend,
	// or a sender's counter that was reset).
	ReusedControlIDs int `json:"reused_control_ids"`
	// With routes (Surveyor.Route): what routing would do with each
	// message stored (duplicates count once): copies by destination,
	// messages no route matches, and transform failures by route (each
	// such message would go to the dead-letter queue).
	ByDestination   map[string]int  `json:"copies_by_destination,omitempty"`
	Unrouted        int             `json:"unrouted,omitempty"`
	TransformFailed map[string]int  `json:"transform_failed_by_route,omitempty"`
	Problems        []SurveyProblem `json:"problems"`

	// Validation against each message's HL7 version (the intake's
	// validation: record counts them among the valid, reject among the
	// invalid): messages with problems, and problems by code and place
	// ("101 PID-3"; repetitions folded together).
	WithProblems int            `json:"messages_with_validation_problems"`
	ByProblem    map[string]int `json:"validation_problems"`
	// DemographicConflicts: patient identifiers (PID-3.1 with its
	// assigning authority) seen with a different name, birth date or sex
	// in another message; each listed in Problems (code 0, no value).
	DemographicConflicts int `json:"demographic_conflicts"`
	// Conflicts are those messages with the values that differ: patient
	// data, never in the JSON report or a log (feed writes them to a CSV
	// of their own only when asked).
	Conflicts []Conflict `json:"-"`
	// DatesOutOfRange: dates and times well formed but out of range
	// (Surveyor.Earliest to Latest; a birth date after the day of the
	// survey), by place (repetitions folded): each listed in Problems
	// (code 102, no value).
	DatesOutOfRange map[string]int `json:"dates_out_of_range"`
	// CharsetProblems: messages whose bytes contradict their character
	// set (MSH-18, or the intake's charset), or that name one not known;
	// each listed in Problems (location MSH-18, no text).
	CharsetProblems int `json:"charset_problems"`
	// The mix: messages by type^event, version and sender (MSH-3/MSH-4).
	Types    map[string]int `json:"types"`
	Versions map[string]int `json:"versions"`
	Senders  map[string]int `json:"senders"`
}

// Conflict is a message whose patient identifier came earlier with
// another name, birth date or sex: where each is (file, line of its MSH,
// position from 1) and the values. Patient data.
type Conflict struct {
	Identifier  string // PID-3.1^PID-3.4
	Differs     string // which: name (PID-5), birth date (PID-7), sex (PID-8)
	This, First Demographics
}

// Demographics is one message's patient as a conflict shows it.
type Demographics struct {
	File                 string
	Line, Position       int
	ControlID            string
	Name, BirthDate, Sex string
}

// Routed is what routing would do with one message (Surveyor.Route).
type Routed struct {
	Destinations []string // one copy each
	Unrouted     bool     // no route matched
	FailedRoutes []string // routes whose transform failed on it
}

// SurveyProblem is one refused message of a file, or a file refused as
// a whole (Index -1).
type SurveyProblem struct {
	File string `json:"file"`
	ReportMessage
}

// Surveyor checks files one after another into a Survey, with the checks
// of in (its listener's or source's limits and accept_types).
type Surveyor struct {
	Survey Survey
	// Route, if set, says what routing would do with a message that
	// would be stored; the survey counts it.
	Route func(m *hl7.Message, raw []byte) Routed
	// Earliest and Latest bound the dates the survey takes as plausible
	// (NewSurveyor: 1900-01-01 and two years from now).
	Earliest, Latest time.Time
	in               *Ingest
	bodies           map[[16]byte]struct{} // content digests seen
	ids              map[[16]byte][16]byte // identity (MSH-3, 4, 10) -> content digest
	people           map[string]person     // patient identifier -> first demographics seen
	today            string                // YYYYMMDD: no one is born after it
	lines            []int                 // the file being surveyed: each message's line
}

// person is the demographics first seen for an identifier, and where.
type person struct {
	name, birth, sex string
	where            string
	seen             Demographics
	conflicted       bool
}

// NewSurveyor returns a Surveyor using in's checks.
func NewSurveyor(in *Ingest) *Surveyor {
	now := time.Now()
	return &Surveyor{in: in, Survey: Survey{ByCode: map[int]int{}, ByProblem: map[string]int{}, Types: map[string]int{},
		Versions: map[string]int{}, Senders: map[string]int{}, DatesOutOfRange: map[string]int{}},
		Earliest: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), Latest: now.AddDate(2, 0, 0), today: now.Format("20060102"),
		bodies: map[[16]byte]struct{}{}, ids: map[[16]byte][16]byte{}, people: map[string]person{}}
}

// File surveys one file's content and returns its messages and whether
// each would be stored (for a caller that sends them on). name is how
// problems name the file.
func (s *Surveyor) File(name string, data []byte) (msgs [][]byte, valid []bool) {
	s.Survey.Files++
	batch, err := hl7.SplitBatch(data, hl7.Limits{MaxMessageBytes: maxFileBytes})
	if err != nil {
		s.Survey.FilesRefused++
		p := SurveyProblem{File: name, ReportMessage: ReportMessage{Index: -1, Reason: splitReason(err), Location: "file"}}
		var he *hl7.Error
		if errors.As(err, &he) {
			p.Code = int(he.Code)
		}
		s.Survey.Problems = append(s.Survey.Problems, p)
		return nil, nil
	}
	valid = make([]bool, len(batch.Messages))
	s.lines = lineNumbers(data, batch.Messages, s.lines[:0])
	for i, raw := range batch.Messages {
		valid[i] = s.Message(name, i, raw)
	}
	s.lines = s.lines[:0]
	return batch.Messages, valid
}

// lineNumbers is the line each message starts on in data (1 for the
// first; 0 when it cannot be found there), counting CR, LF and CRLF as
// one line end each.
func lineNumbers(data []byte, msgs [][]byte, out []int) []int {
	at, scan, line := 0, 0, 1
	for _, m := range msgs {
		i := bytes.Index(data[at:], m)
		if i < 0 || len(m) == 0 {
			out = append(out, 0)
			continue
		}
		start := at + i
		for j := scan; j < start; j++ {
			if data[j] == '\n' || data[j] == '\r' && (j+1 >= len(data) || data[j+1] != '\n') {
				line++
			}
		}
		scan, at = start, start+len(m)
		out = append(out, line)
	}
	return out
}

// Message surveys one message, the index-th of file name. It reports
// whether the message would be stored.
func (s *Surveyor) Message(name string, index int, raw []byte) bool {
	s.Survey.Messages++
	var m hl7.Message
	id, refused := s.in.check(raw, &m)
	if refused != nil {
		s.Survey.Invalid++
		s.Survey.ByCode[int(refused.Code)]++
		s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: name, ReportMessage: reportMessage(index, id, refused)})
		return false
	}
	s.Survey.Types[m.Type()+"^"+m.Trigger()]++
	s.Survey.Versions[m.Version()]++
	s.Survey.Senders[m.SendingApplication()+"/"+m.SendingFacility()]++
	if problems := s.in.validate(&m); len(problems) > 0 {
		s.Survey.WithProblems++
		for _, p := range problems {
			s.Survey.ByProblem[strconv.Itoa(p.Code)+" "+foldRepetitions(p.Location)]++
			s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: name,
				ReportMessage: ReportMessage{Index: index, ControlID: id, Code: p.Code, Location: p.Location, Reason: "validation: " + p.Reason}})
		}
		if s.in.listener.Validation == "reject" {
			s.Survey.Invalid++
			s.Survey.ByCode[problems[0].Code]++
			return false
		}
	}
	s.Survey.Valid++
	s.dates(name, index, id, &m)
	s.charset(name, index, id, &m, raw)
	s.demographics(name, index, id, &m)
	// The identity ingest stores a message under (wire.IngestID): its
	// sender's MSH-3, MSH-4 and MSH-10, and a digest of its bytes.
	mid := identify(s.in.listener.Name, &m)
	if _, seen := s.bodies[mid.digest]; seen {
		s.Survey.DuplicateContent++
		return true
	}
	s.bodies[mid.digest] = struct{}{}
	if prev, seen := s.ids[mid.key]; seen && prev != mid.digest {
		s.Survey.ReusedControlIDs++
	}
	s.ids[mid.key] = mid.digest
	if s.Route != nil {
		s.countRouted(s.Route(&m, raw))
	}
	return true
}

// dates notes the message's dates out of range, and a birth date after
// today.
func (s *Surveyor) dates(file string, index int, id string, m *hl7.Message) {
	problems := spec.DatesOutOfRange(m, s.Earliest, s.Latest)
	if born := m.Value(pathPID7); len(born) >= 8 && string(born[:8]) > s.today && !slices.ContainsFunc(problems, func(p spec.Problem) bool {
		return p.Segment == "PID" && p.Field == 7
	}) {
		problems = append(problems, spec.Problem{Location: "PID-7.1", Code: spec.CodeDataType, Reason: "PID-7.1 (Date/Time of Birth) is after the day of the survey"})
	}
	for _, p := range problems {
		s.Survey.DatesOutOfRange[foldRepetitions(p.Location)]++
		s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: file,
			ReportMessage: ReportMessage{Index: index, ControlID: id, Code: p.Code, Location: p.Location, Reason: p.Reason}})
	}
}

// charset notes bytes that contradict the message's character set.
func (s *Surveyor) charset(file string, index int, id string, m *hl7.Message, raw []byte) {
	var reasons []string
	configured := ""
	if s.in.Charset != nil {
		configured = s.in.Charset.Configured
	}
	cs, err := m.ResolveCharset(configured, true)
	if err != nil {
		reasons = append(reasons, strings.TrimPrefix(err.Error(), "hl7: "))
	} else {
		for _, w := range cs.Check(raw) {
			reasons = append(reasons, "bytes do not match "+cs.Name+": "+w.String())
		}
	}
	if len(reasons) == 0 {
		return
	}
	s.Survey.CharsetProblems++
	for _, r := range reasons {
		s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: file,
			ReportMessage: ReportMessage{Index: index, ControlID: id, Location: "MSH-18", Reason: "charset: " + r}})
	}
}

// foldRepetitions drops repetition numbers from a place: OBX[2]-5 is
// OBX-5, PID-3[2].4 is PID-3.4.
func foldRepetitions(loc string) string {
	var b strings.Builder
	skip := false
	for _, r := range loc {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// demographics notes the patient's name, birth date and sex by their
// identifier, and a conflict when an earlier message had others.
func (s *Surveyor) demographics(file string, index int, id string, m *hl7.Message) {
	mrn := m.ValueString(pathPID31)
	if mrn == "" {
		return
	}
	key := mrn + "^" + m.ValueString(pathPID34)
	now := person{name: strings.ToUpper(m.ValueString(pathPID5)), birth: m.ValueString(pathPID7), sex: m.ValueString(pathPID8),
		where: fmt.Sprintf("%s #%d", file, index)}
	now.seen = Demographics{File: file, Position: index + 1, ControlID: id, Name: m.ValueString(pathPID5), BirthDate: now.birth, Sex: now.sex}
	if index < len(s.lines) {
		now.seen.Line = s.lines[index]
		now.where = fmt.Sprintf("%s:%d", file, now.seen.Line)
	}
	first, seen := s.people[key]
	if !seen {
		s.people[key] = now
		return
	}
	var differ []string
	for _, d := range []struct{ what, a, b string }{{"name (PID-5)", first.name, now.name}, {"birth date (PID-7)", first.birth, now.birth},
		{"sex (PID-8)", first.sex, now.sex}} {
		if d.a != "" && d.b != "" && d.a != d.b {
			differ = append(differ, d.what)
		}
	}
	if len(differ) == 0 {
		return
	}
	if !first.conflicted {
		s.Survey.DemographicConflicts++
		first.conflicted = true
		s.people[key] = first
	}
	s.Survey.Conflicts = append(s.Survey.Conflicts, Conflict{Identifier: key, Differs: strings.Join(differ, ", "), This: now.seen, First: first.seen})
	s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: file, ReportMessage: ReportMessage{Index: index, ControlID: id,
		Location: "PID", Reason: "demographics conflict: the same patient identifier as " + first.where + " with another " + strings.Join(differ, ", ")}})
}

var (
	pathPID31 = hl7.MustParsePath("PID-3.1")
	pathPID34 = hl7.MustParsePath("PID-3.4")
	pathPID5  = hl7.MustParsePath("PID-5")
	pathPID7  = hl7.MustParsePath("PID-7.1")
	pathPID8  = hl7.MustParsePath("PID-8")
)

func (s *Surveyor) countRouted(r Routed) {
	if s.Survey.ByDestination == nil {
		s.Survey.ByDestination, s.Survey.TransformFailed = map[string]int{}, map[string]int{}
	}
	for _, d := range r.Destinations {
		s.Survey.ByDestination[d]++
	}
	for _, rt := range r.FailedRoutes {
		s.Survey.TransformFailed[rt]++
	}
	if r.Unrouted {
		s.Survey.Unrouted++
	}
}
