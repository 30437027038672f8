package ingest

import (
	"errors"

	"github.com/hl7broker/hl7broker/hl7"
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
	Route  func(m *hl7.Message, raw []byte) Routed
	in     *Ingest
	bodies map[[16]byte]struct{} // content digests seen
	ids    map[[16]byte][16]byte // identity (MSH-3, 4, 10) -> content digest
}

// NewSurveyor returns a Surveyor using in's checks.
func NewSurveyor(in *Ingest) *Surveyor {
	return &Surveyor{in: in, Survey: Survey{ByCode: map[int]int{}},
		bodies: map[[16]byte]struct{}{}, ids: map[[16]byte][16]byte{}}
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
	for i, raw := range batch.Messages {
		valid[i] = s.Message(name, i, raw)
	}
	return batch.Messages, valid
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
	s.Survey.Valid++
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
