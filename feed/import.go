package feed

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
)

// Import checks, and with a Sender sends, the messages of files, as
// hl7broker import does: each file is split into its messages, checked as
// the broker's intake would (sv), and sent in order; what happened is in
// sv.Survey and the Sender's counts.
type Import struct {
	Survey   *ingest.Surveyor
	Sender   *Sender   // nil: check only (--validate-only)
	Progress *Progress // nil: none
	Out      io.Writer // the summary, at the end (nil: none)
	Report   string    // a file for the problems (FILE.csv) or the survey (FILE.json); "": none
	// Demographics, when set, is a CSV file for the demographics
	// conflicts with their values: patient data, written only when asked.
	Demographics string
	// Reconcile, when set, accounts for every message read against the
	// broker's history once the run has sent them (or at once, without
	// a Sender): the totals go to Out, and a row per message and
	// destination to the CSV file Reconciliation names ("": none).
	Reconcile      *Reconciler
	Reconciliation string

	entries []Entry
}

// Run reads each file in turn, then writes the summary to Out (also when
// the run stopped short) and the report. A file that cannot be read is
// counted as refused whole; a sender that cannot go on ends the run with
// its error. ok says every message was valid and, when sending,
// acknowledged AA or CA.
func (imp *Import) Run(ctx context.Context, files []string) (ok bool, err error) {
	err = imp.run(ctx, files)
	if imp.Progress != nil {
		imp.Progress.Stop()
	}
	if imp.Out != nil {
		PrintSurvey(imp.Out, imp.Survey.Survey, imp.Sender)
	}
	if err == nil && imp.Report != "" {
		err = WriteReport(imp.Report, imp.Survey.Survey)
	}
	if err == nil && imp.Demographics != "" {
		err = WriteConflicts(imp.Demographics, imp.Survey.Survey.Conflicts)
	}
	s := imp.Survey.Survey
	ok = err == nil && s.Invalid+s.FilesRefused == 0 && (imp.Sender == nil || imp.Sender.Refused == 0)
	if err == nil && imp.Reconcile != nil {
		var acc []Account
		if acc, err = imp.Reconcile.Run(ctx, imp.entries); err == nil {
			t := Total(acc)
			if imp.Out != nil {
				t.Print(imp.Out)
			}
			ok = ok && t.OK()
			if imp.Reconciliation != "" {
				err = WriteReconciliation(imp.Reconciliation, acc)
			}
		}
	}
	return ok && err == nil, err
}

func (imp *Import) run(ctx context.Context, files []string) error {
	sv := imp.Survey
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			sv.Survey.Files++
			sv.Survey.FilesRefused++
			sv.Survey.Problems = append(sv.Survey.Problems, ingest.SurveyProblem{File: file,
				ReportMessage: ingest.ReportMessage{Index: -1, Location: "file", Reason: err.Error()}})
			continue
		}
		mark, base := len(sv.Survey.Problems), len(imp.entries)
		msgs, valid := sv.File(file, data)
		if imp.Reconcile != nil {
			imp.entries = append(imp.entries, entries(file, msgs, valid, firstProblems(sv.Survey.Problems[mark:], len(msgs)))...)
		}
		if imp.Sender != nil {
			if imp.Reconcile != nil {
				imp.Sender.Acked = func(_ string, i int, code string) { imp.entries[base+i].Ack = code }
			}
			if err := imp.Sender.File(ctx, file, data, msgs, valid); err != nil {
				return err
			}
		}
		if imp.Progress != nil {
			imp.Progress.Add(int64(len(data)), sv.Survey)
		}
	}
	return nil
}

// firstProblems is each message's first problem (by index), as "code
// place: reason".
func firstProblems(ps []ingest.SurveyProblem, n int) []string {
	out := make([]string, n)
	for _, p := range ps {
		if p.Index >= 0 && p.Index < n && out[p.Index] == "" {
			out[p.Index] = fmt.Sprintf("%d %s: %s", p.Code, p.Location, p.Reason)
		}
	}
	return out
}

// Files expands folders into their files (recursively, leaving out
// hidden ones), in name order, and sums their sizes.
func Files(args []string) ([]string, int64, error) {
	var files []string
	var total int64
	for _, a := range args {
		err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != a && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				info, err := d.Info()
				if err != nil {
					return err
				}
				files = append(files, p)
				total += info.Size()
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return files, total, nil
}

// Progress prints a progress line with a bar by bytes read, every
// interval.
type Progress struct {
	w        io.Writer
	total    int64
	read     int64
	survey   ingest.Survey
	every    time.Duration
	lastLine time.Time
	started  time.Time
	stopped  bool
}

// NewProgress prints to w every interval (0: never), of total bytes.
func NewProgress(w io.Writer, every time.Duration, total int64) *Progress {
	return &Progress{w: w, total: total, every: every, started: time.Now(), lastLine: time.Now()}
}

// Add counts n more bytes read, and the survey so far.
func (p *Progress) Add(n int64, sv ingest.Survey) {
	p.read += n
	p.survey = sv
	if p.every > 0 && time.Since(p.lastLine) >= p.every {
		p.line()
		p.lastLine = time.Now()
	}
}

func (p *Progress) line() {
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.read) / float64(p.total)
	}
	bar := strings.Repeat("#", int(frac*20)) + strings.Repeat(".", 20-int(frac*20))
	secs := time.Since(p.started).Seconds()
	fmt.Fprintf(p.w, "[%s] %3.0f%%  files %d  messages %d  invalid %d  %.0f msg/s\n", bar, frac*100,
		p.survey.Files, p.survey.Messages, p.survey.Invalid, float64(p.survey.Messages)/max(secs, 1e-9))
}

// Stop prints the last line, once.
func (p *Progress) Stop() {
	if !p.stopped && p.every > 0 {
		p.line()
	}
	p.stopped = true
}

// PrintSurvey prints what an import found and sent.
func PrintSurvey(w io.Writer, s ingest.Survey, snd *Sender) {
	fmt.Fprintf(w, "files %d (%d refused whole), messages %d: valid %d, invalid %d\n", s.Files, s.FilesRefused, s.Messages, s.Valid, s.Invalid)
	if len(s.ByCode) > 0 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(s.ByCode)) {
			parts = append(parts, fmt.Sprintf("%d (%s) %d", c, hl7.ErrorCode(c).Text(), s.ByCode[c]))
		}
		fmt.Fprintf(w, "invalid by code: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "duplicates by content: %d\ncontrol IDs reused for other content: %d\n", s.DuplicateContent, s.ReusedControlIDs)
	fmt.Fprintf(w, "validation against each message's HL7 version: %d messages with problems", s.WithProblems)
	if len(s.ByProblem) > 0 {
		fmt.Fprintf(w, " (by code and place: %s)", countList(s.ByProblem))
	}
	fmt.Fprintf(w, "\npatients whose demographics conflict (one identifier, another name, birth date or sex): %d\n", s.DemographicConflicts)
	n := 0
	for _, c := range s.DatesOutOfRange {
		n += c
	}
	fmt.Fprintf(w, "dates out of range (before 1900, over two years ahead, or a birth after today): %d", n)
	if n > 0 {
		fmt.Fprintf(w, " (by place: %s)", countList(s.DatesOutOfRange))
	}
	fmt.Fprintf(w, "\ncharset problems (bytes that contradict MSH-18, or a character set not known): %d messages\n", s.CharsetProblems)
	fmt.Fprintf(w, "types: %s\nversions: %s\nsenders: %s\n", countList(s.Types), countList(s.Versions), countList(s.Senders))
	if s.ByDestination != nil {
		fmt.Fprintf(w, "routing (per --config): copies by destination: %s; no route: %d; transform failed: %s\n",
			countList(s.ByDestination), s.Unrouted, countList(s.TransformFailed))
	}
	if snd != nil {
		fmt.Fprintf(w, "sent %d (not AA/CA: %d), already sent by an earlier run: %d\n", snd.Sent, snd.Refused, snd.Skipped)
	}
}

// WriteConflicts writes the demographics conflicts, each with the earlier
// message it disagrees with, as CSV: patient data (identifiers, names,
// birth dates, sexes), made mode 0600.
func WriteConflicts(name string, cs []ingest.Conflict) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("--demographics: %w", err)
	}
	defer f.Close()
	cw := csv.NewWriter(f)
	_ = cw.Write([]string{"identifier", "differs", "file", "line", "position", "control_id", "name", "birth_date", "sex",
		"first_file", "first_line", "first_position", "first_control_id", "first_name", "first_birth_date", "first_sex"})
	for _, c := range cs {
		row := []string{c.Identifier, c.Differs}
		for _, d := range []ingest.Demographics{c.This, c.First} {
			row = append(row, d.File, strconv.Itoa(d.Line), strconv.Itoa(d.Position), d.ControlID, d.Name, d.BirthDate, d.Sex)
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return f.Close()
}

// countList prints counts by name, in name order ("none" when empty).
func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteReport writes the problems as CSV (one per line) or the whole
// survey as JSON, by the file's extension.
func WriteReport(name string, s ingest.Survey) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(name), ".json") {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
		return f.Close()
	}
	cw := csv.NewWriter(f)
	_ = cw.Write([]string{"file", "index", "control_id", "code", "location", "reason"})
	for _, p := range s.Problems {
		_ = cw.Write([]string{p.File, strconv.Itoa(p.Index), p.ControlID, strconv.Itoa(p.Code), p.Location, p.Reason})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return f.Close()
}
