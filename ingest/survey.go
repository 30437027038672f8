package ingest

import (
	"crypto/sha256"
	"encoding/binary"

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
	ReusedControlIDs int             `json:"reused_control_ids"`
	Problems         []SurveyProblem `json:"problems"`
}

// SurveyProblem is one refused message, or a file refused as a whole
// (Index -1).
type SurveyProblem struct {
	File      string `json:"file"`
	Index     int    `json:"index"` // from 0, in the file
	ControlID string `json:"control_id,omitempty"`
	Code      int    `json:"code"`
	Location  string `json:"location"`
	Reason    string `json:"reason"`
}

// Surveyor checks files one after another into a Survey, with the checks
// of in (its listener's or source's limits and accept_types).
type Surveyor struct {
	Survey Survey
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
		p := SurveyProblem{File: name, Index: -1, Reason: splitReason(err), Location: "file"}
		if he, ok := err.(*hl7.Error); ok {
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
	id, refused := s.in.Check(raw)
	if refused != nil {
		s.Survey.Invalid++
		s.Survey.ByCode[int(refused.Code)]++
		p := reportMessage(index, id, refused)
		s.Survey.Problems = append(s.Survey.Problems, SurveyProblem{File: name, Index: p.Index, ControlID: p.ControlID,
			Code: p.Code, Location: p.Location, Reason: p.Reason})
		return false
	}
	s.Survey.Valid++
	var body [16]byte
	sum := sha256.Sum256(raw)
	copy(body[:], sum[:])
	if _, seen := s.bodies[body]; seen {
		s.Survey.DuplicateContent++
		return true
	}
	s.bodies[body] = struct{}{}
	var m hl7.Message
	if m.ParseWith(raw, s.in.limits) == nil {
		key := identityKey(&m)
		if prev, seen := s.ids[key]; seen && prev != body {
			s.Survey.ReusedControlIDs++
		}
		s.ids[key] = body
	}
	return true
}

// identityKey hashes MSH-3, MSH-4 and MSH-10: how a sender names a message.
func identityKey(m *hl7.Message) [16]byte {
	h := sha256.New()
	var n [4]byte
	for _, p := range []hl7.Path{hl7.PathMSH3, hl7.PathMSH4, hl7.PathMSH10} {
		raw, _ := m.Raw(p)
		binary.BigEndian.PutUint32(n[:], uint32(len(raw)))
		h.Write(n[:])
		h.Write(raw)
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}
