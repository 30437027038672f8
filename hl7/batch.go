package hl7

import (
	"bytes"
	"strconv"
)

// Batch is a file of messages split into its messages: an HL7 batch
// (FHS, BHS, messages, BTS, FTS), or messages back to back, with or
// without blank lines between them.
type Batch struct {
	// Messages are sub-slices of the input, each from its MSH to the end
	// of its last segment's terminator, ready for Parse.
	Messages [][]byte
	// Envelope holds the FHS, BHS, BTS and FTS segments in the order met,
	// without terminators.
	Envelope [][]byte
	// Warnings are counts in BTS-1 or FTS-1 that disagree with what the
	// file holds (Severity W). The messages are still all there.
	Warnings []*Error
}

// SplitBatch splits data into messages. A leading UTF-8 BOM is skipped.
// It fails with ErrBatch (code 100) on a segment before any MSH, a second
// FHS, or a BHS inside an open batch; with ErrTooLarge past
// lim.MaxMessageBytes; and with ErrEmpty when there is no segment at all.
// Messages are not parsed: call Parse on each.
func SplitBatch(data []byte, lim Limits) (*Batch, error) {
	lim = lim.withDefaults()
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(data) > lim.MaxMessageBytes {
		return nil, newError(ErrTooLarge, CodeInternal, at(lim.MaxMessageBytes), "file is %d bytes; the limit is %d", len(data), lim.MaxMessageBytes)
	}
	s := splitter{data: data, b: &Batch{}, fs: '|', msgStart: -1}
	pos := 0
	for pos < len(data) {
		end := pos
		for end < len(data) && data[end] != '\r' && data[end] != '\n' {
			end++
		}
		next := end
		if next < len(data) && data[next] == '\r' {
			next++
		}
		if next < len(data) && data[next] == '\n' {
			next++
		}
		if end > pos {
			if err := s.segment(pos, end, next); err != nil {
				return nil, err
			}
		}
		pos = next
	}
	s.closeMessage()
	if len(s.b.Messages) == 0 && len(s.b.Envelope) == 0 {
		return nil, newError(ErrEmpty, CodeSegmentSequence, at(0), "no segments")
	}
	return s.b, nil
}

// splitter walks the segments of a file. A batch is what a BHS opens, or
// the messages before a BTS or FTS that no BHS opened.
type splitter struct {
	data             []byte
	b                *Batch
	fs               byte
	msgStart, msgEnd int
	sawFHS, inBatch  bool
	inThis, batches  int // messages since the last batch boundary; batches closed
}

func (s *splitter) segment(start, end, next int) error {
	line := s.data[start:end]
	name := ""
	if len(line) >= 3 {
		name = string(line[:3])
	}
	if len(line) > 3 && (name == "MSH" || name == "BHS" || name == "FHS") {
		s.fs = line[3]
	}
	switch name {
	case "MSH":
		s.closeMessage()
		s.msgStart, s.msgEnd = start, next
		s.inThis++
		return nil
	case "FHS":
		if s.sawFHS {
			return newError(ErrBatch, CodeSegmentSequence, at(start), "a second FHS segment: a file has one")
		}
		s.closeMessage()
		s.sawFHS = true
	case "BHS":
		if s.inBatch {
			return newError(ErrBatch, CodeSegmentSequence, at(start), "a BHS segment inside a batch that has no BTS yet")
		}
		s.closeMessage()
		s.inBatch, s.inThis = true, 0
	case "BTS":
		s.closeMessage()
		if n := s.count(line); n >= 0 && n != s.inThis {
			s.warn(start, "BTS-1 says %d messages; the batch has %d", n, s.inThis)
		}
		s.batches++
		s.inBatch, s.inThis = false, 0
	case "FTS":
		s.closeMessage()
		if s.inBatch || s.inThis > 0 {
			s.batches++
			s.inBatch, s.inThis = false, 0
		}
		if n := s.count(line); n >= 0 && n != s.batches {
			s.warn(start, "FTS-1 says %d batches; the file has %d", n, s.batches)
		}
	default:
		if s.msgStart < 0 {
			return newError(ErrBatch, CodeSegmentSequence, at(start), "a segment before any MSH")
		}
		s.msgEnd = next
		return nil
	}
	s.b.Envelope = append(s.b.Envelope, line)
	return nil
}

// count reads field 1 of a BTS or FTS segment; -1 when empty or not a number.
func (s *splitter) count(line []byte) int {
	if len(line) < 5 || line[3] != s.fs {
		return -1
	}
	f := line[4:]
	if i := bytes.IndexByte(f, s.fs); i >= 0 {
		f = f[:i]
	}
	n, err := strconv.Atoi(string(f))
	if err != nil {
		return -1
	}
	return n
}

func (s *splitter) closeMessage() {
	if s.msgStart >= 0 {
		s.b.Messages = append(s.b.Messages, s.data[s.msgStart:s.msgEnd])
		s.msgStart = -1
	}
}

func (s *splitter) warn(offset int, format string, args ...any) {
	e := newError(ErrBatch, CodeSegmentSequence, at(offset), format, args...)
	e.Severity = SeverityWarning
	s.b.Warnings = append(s.b.Warnings, e)
}
