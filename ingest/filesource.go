package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// type file: the files that appear in a folder of this machine.
func init() {
	RegisterSource(SourceType[FolderOptions]{
		Name:      "file",
		Documents: true,
		Check: func(o *FolderOptions, _ config.SourceConfig, key string, c *config.Checker) {
			Folder{FolderOptions: *o}.check("a file", key, c)
		},
		Defaults: func(o *FolderOptions, _ *config.SourceConfig) { o.defaults(false) },
		New: func(_ *FolderOptions, s config.SourceConfig, env SourceEnv) (Source, error) {
			return newFileSource(s, env), nil
		},
	})
}

// split is a file's messages: HL7 v2 split as batches or back to back,
// or (format json or xml) each document's message as the source's script
// builds it, with the error of each document it could not (built[i]
// non-nil: messages[i] is empty).
func (s *FileSource) split(data []byte) (batch *hl7.Batch, built []error, err error) {
	if s.Builder == nil {
		b, err := hl7.SplitBatch(data, hl7.Limits{MaxMessageBytes: maxFileBytes}) // each message is held to the source's limits as it is stored
		if err != nil {
			return nil, nil, errors.New(splitReason(err))
		}
		return b, nil, nil
	}
	docs, err := s.Builder.Build(data)
	if err != nil {
		return nil, nil, err
	}
	batch = &hl7.Batch{}
	built = make([]error, len(docs))
	for i, d := range docs {
		batch.Messages = append(batch.Messages, d.Raw)
		built[i] = d.Err
	}
	return batch, built, nil
}

// newFileSource makes a file or sftp source.
func newFileSource(s config.SourceConfig, env SourceEnv) *FileSource {
	return &FileSource{Config: s, Ingest: env.Ingest, Metrics: env.Files, Log: env.Log, Sync: env.Sync, LastPlace: env.LastPlace, Builder: env.Builder}
}

// FileSource reads the files that appear in a folder and stores each of
// their messages through Ingest, as an MLLP listener would. A file is read
// once it is complete: its size and time unchanged for StableFor, and its
// name not a temporary one (a leading dot, or .tmp, .part, .filepart). It
// is split into its messages (HL7 batches or messages back to back).
// Only when every message is stored or refused does the file leave the
// folder: to done_dir (or deleted, on_done: delete) when all were stored,
// to error_dir with a report beside it when some were refused. A file
// whose messages cannot be stored now (the store is down) stays and is
// read again later.
//
// Reading a file again stores none of it twice: each message is stored
// under its file's digest and its index (wire.FileMessageID), and a file
// read again after a crash resumes after the last message stored
// (LastPlace).
type FileSource struct {
	Config config.SourceConfig
	Ingest *Ingest
	// LastPlace says where this source stopped: the last message it stored.
	LastPlace func(ctx context.Context) (store.FilePlace, bool, error)
	// Sync, if set, makes what was stored durable. Ingest may then store
	// without waiting for the disk (store.NATS.BatchCommitter): a file
	// leaves the folder only after Sync, so one flush covers the file.
	Sync    func(ctx context.Context) error
	Metrics *FileMetrics
	Log     zerolog.Logger
	// Builder, for format json or xml, makes each document's message.
	Builder *Builder

	seen   map[string]fileState // candidate files by path: how they looked last time
	now    func() time.Time     // the clock; tests set it
	spec   Folder               // Config's folder keys
	folder folder               // where the files are: local, or on an SFTP server

	mu    sync.Mutex
	stuck map[string]stuckFile // files read that could not be moved on, by path

	skipped map[string]bool // files not read (links...), each warned of once while present
}

// stuckFile is a file whose messages were stored but that could not leave
// the folder (done_dir read-only, full, gone): it is tried again after a
// backoff that doubles up to maxStuckWait, not at every poll.
type stuckFile struct {
	name     string
	since    time.Time
	retryAt  time.Time
	failures int
	reason   string
}

// maxStuckWait is the longest wait between tries of a stuck file.
const maxStuckWait = 5 * time.Minute

// errNotMoved: the file's messages are stored; moving it on failed.
var errNotMoved = errors.New("the file could not be moved on")

// Problem says what is wrong with this source now, for /readyz: the files
// it cannot move on, or "".
func (s *FileSource) Problem() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.stuck) == 0 {
		return ""
	}
	var first stuckFile
	for _, f := range s.stuck {
		if first.since.IsZero() || f.since.Before(first.since) {
			first = f
		}
	}
	return fmt.Sprintf("%d file(s) read but not moved on, the first (%s) since %s: %s",
		len(s.stuck), first.name, first.since.UTC().Format(time.RFC3339), first.reason)
}

// FileMetrics are the series a file source counts into, by source.
type FileMetrics struct {
	Files           *prometheus.CounterVec // source, outcome: done | error
	Stuck           *prometheus.GaugeVec   // source: files read that could not be moved on
	Bytes           *prometheus.CounterVec // source
	CharsetWarnings *prometheus.CounterVec // source (Ingest.Charset counts into it)
}

type fileState struct {
	size    int64
	modTime time.Time
	since   time.Time // first seen with this size and time
}

// Report is what a file source writes beside a file it moved to
// error_dir (NAME.report.json): where each refused message is and why,
// never its content.
type Report struct {
	File     string          `json:"file"`
	Digest   string          `json:"sha256"`
	Messages int             `json:"messages"`
	Stored   int             `json:"stored"`
	Refused  []ReportMessage `json:"refused"`
	Error    string          `json:"error,omitempty"` // the file as a whole could not be split
	At       time.Time       `json:"at"`
}

// ReportMessage is one refused message of a file.
type ReportMessage struct {
	Index     int    `json:"index"` // from 0, in the file; -1: the file as a whole
	ControlID string `json:"control_id,omitempty"`
	Code      int    `json:"code"`     // HL7 table 0357
	Location  string `json:"location"` // e.g. MSH-9, PID-5.1 or byte 120
	Reason    string `json:"reason"`
}

// maxFileBytes is the largest file a file source reads: it reads a file
// whole. A larger one is refused and reported.
const maxFileBytes = 1 << 30

// errStoreUnavailable: a message could not be stored now; the file waits.
var errStoreUnavailable = errors.New("the store did not take a message; the file will be read again")

// errFileBusy: another process still has the file open for writing (a
// writer that paused longer than stable_for); it is read once closed.
var errFileBusy = errors.New("the file is still open for writing; it is read once its writer closes it")

// errFileChanged: the file's size or time moved while it was read, so
// what was read may be cut short; it is read again once stable.
var errFileChanged = errors.New("the file changed while it was read; it is read again once stable")

// Run watches the folder until ctx ends. A local folder that cannot be
// listed ends it with the error (its supervisor starts it again); an SFTP
// server that cannot be reached is tried again at each poll, with a
// warning when it goes away and a line when it is back.
func (s *FileSource) Run(ctx context.Context) error {
	s.init()
	defer s.folder.close()
	s.Log.Info().Str("source", s.Config.Name).Str("dir", s.spec.Dir).Str("type", s.Config.Type).Msg("watching for files")
	tick := time.NewTicker(s.spec.Poll)
	defer tick.Stop()
	failing := false
	for {
		err := s.scan(ctx)
		switch {
		case err != nil && s.spec.Login == nil:
			return err
		case err != nil && !failing:
			s.Log.Warn().Str("source", s.Config.Name).Str("reason", err.Error()).Msg("the server's folder cannot be listed; trying again at each poll")
			failing = true
		case err == nil && failing:
			s.Log.Info().Str("source", s.Config.Name).Msg("the server's folder can be listed again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// init reads the folder's keys and opens it, once.
func (s *FileSource) init() {
	if s.spec.Dir == "" {
		s.spec = FolderOf(s.Config)
	}
	if s.folder == nil {
		s.folder = newFolder(s.spec, s.Log)
	}
}

// scan lists the folder and reads each file that is complete, oldest
// first. It returns an error only for a folder it cannot list.
func (s *FileSource) scan(ctx context.Context) error {
	s.init()
	if s.seen == nil {
		if err := s.folder.prepare(ctx); err != nil {
			return fmt.Errorf("source %s: %w", s.Config.Name, err)
		}
		s.seen = map[string]fileState{}
	}
	files, err := s.folder.list(ctx)
	if err != nil {
		return fmt.Errorf("source %s: %w", s.Config.Name, err)
	}
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	present := map[string]bool{}
	var ready []listed
	for _, f := range files {
		present[f.path] = true
		if f.skip != "" {
			if !s.skipped[f.path] {
				s.Log.Warn().Str("source", s.Config.Name).Str("file", f.name()).Str("reason", f.skip).Msg("file skipped")
				if s.skipped == nil {
					s.skipped = map[string]bool{}
				}
				s.skipped[f.path] = true
			}
			continue
		}
		if s.waiting(f.path, now) {
			continue
		}
		st, ok := s.seen[f.path]
		if !ok || st.size != f.size || !st.modTime.Equal(f.modTime) {
			s.seen[f.path] = fileState{size: f.size, modTime: f.modTime, since: now}
			if s.spec.StableFor > 0 {
				continue
			}
		} else if now.Sub(st.since) < s.spec.StableFor {
			continue
		}
		ready = append(ready, f)
	}
	for p := range s.seen {
		if !present[p] {
			delete(s.seen, p)
		}
	}
	for p := range s.skipped {
		if !present[p] {
			delete(s.skipped, p)
		}
	}
	s.forgetGone(present)
	for _, f := range ready {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.readFile(ctx, f); err != nil {
			if errors.Is(err, errNotMoved) {
				s.markStuck(f, now, err)
				continue
			}
			if errors.Is(err, errFileBusy) || errors.Is(err, errFileChanged) {
				// Still being written: wait for stable_for again from now.
				s.seen[f.path] = fileState{size: -1, since: now}
				s.Log.Info().Str("source", s.Config.Name).Str("file", f.name()).Str("reason", err.Error()).Msg("file not read yet")
				continue
			}
			s.Log.Warn().Str("source", s.Config.Name).Str("file", f.name()).Str("reason", err.Error()).Msg("file left in place; it will be read again")
			if errors.Is(err, errStoreUnavailable) {
				return nil // the next files would fail alike, and must not overtake this one
			}
			continue
		}
		delete(s.seen, f.path)
		s.unstick(f.path)
	}
	return nil
}

// waiting says whether path is a stuck file whose next try is not due.
func (s *FileSource) waiting(path string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stuck[path]
	return ok && now.Before(st.retryAt)
}

// markStuck records a failed move of f and when to try again, with one
// warning a try (not one a poll).
func (s *FileSource) markStuck(f listed, now time.Time, err error) {
	s.mu.Lock()
	st, ok := s.stuck[f.path]
	if !ok {
		st = stuckFile{name: f.name(), since: now}
	}
	st.failures++
	wait := min(max(s.spec.Poll, time.Second)<<min(st.failures-1, 20), maxStuckWait)
	st.retryAt, st.reason = now.Add(wait), err.Error()
	if s.stuck == nil {
		s.stuck = map[string]stuckFile{}
	}
	s.stuck[f.path] = st
	n := len(s.stuck)
	s.mu.Unlock()
	s.gaugeStuck(n)
	s.Log.Warn().Str("source", s.Config.Name).Str("file", f.name()).Str("reason", err.Error()).Int("tries", st.failures).Dur("retry_in", wait).
		Msg("file read and its messages stored, but it cannot be moved on; it stays, and is not stored again")
}

func (s *FileSource) unstick(path string) {
	s.mu.Lock()
	_, ok := s.stuck[path]
	delete(s.stuck, path)
	n := len(s.stuck)
	s.mu.Unlock()
	if ok {
		s.Log.Info().Str("source", s.Config.Name).Str("file", filepath.Base(path)).Msg("the file could be moved on at last")
		s.gaugeStuck(n)
	}
}

// forgetGone drops stuck files that left the folder (an admin moved them).
func (s *FileSource) forgetGone(present map[string]bool) {
	s.mu.Lock()
	for p := range s.stuck {
		if !present[p] {
			delete(s.stuck, p)
		}
	}
	n := len(s.stuck)
	s.mu.Unlock()
	s.gaugeStuck(n)
}

func (s *FileSource) gaugeStuck(n int) {
	if s.Metrics != nil && s.Metrics.Stuck != nil {
		s.Metrics.Stuck.WithLabelValues(s.Config.Name).Set(float64(n))
	}
}

// temporaryName is a name a writer uses until the file is complete.
func temporaryName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return true
	}
	for _, suffix := range []string{".tmp", ".part", ".filepart", ".partial", ".crdownload"} {
		if strings.HasSuffix(strings.ToLower(name), suffix) {
			return true
		}
	}
	return false
}

// readFile stores the messages of one file and moves it on.
func (s *FileSource) readFile(ctx context.Context, f listed) error {
	if f.size > maxFileBytes {
		return s.finish(ctx, f, nil, &Report{File: f.name(), At: time.Now().UTC(),
			Error: fmt.Sprintf("file is %d bytes; a file source reads files up to %d bytes: split it", f.size, maxFileBytes)}, s.Log)
	}
	data, err := s.folder.read(ctx, f)
	if err != nil {
		return err
	}
	// A file that is not as it was listed was being written: nothing of
	// it is stored, lest a result be stored cut short (5 for 5.4).
	if err := s.unchanged(ctx, f, int64(len(data))); err != nil {
		return err
	}
	name := f.name()
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	log := s.Log.With().Str("source", s.Config.Name).Str("file", name).Logger()
	report := &Report{File: name, Digest: digest, At: time.Now().UTC()}

	batch, built, err := s.split(data)
	if err != nil {
		report.Error = err.Error()
		log.Warn().Int("size", len(data)).Str("reason", report.Error).Msg("file refused: it could not be split into messages")
		return s.finish(ctx, f, data, report, log)
	}
	report.Messages = len(batch.Messages)
	from, err := s.resumeAt(ctx, name, digest)
	if err != nil {
		return err
	}
	if from > 0 {
		log.Info().Int("from_index", from).Int("messages", report.Messages).Msg("file read again: its first messages were stored by an earlier run")
	}
	for i, raw := range batch.Messages {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i < len(built) && built[i] != nil { // a document whose script failed: refused, nothing to store
			report.Refused = append(report.Refused, ReportMessage{Index: i, Code: int(hl7.CodeInternal), Location: "document", Reason: built[i].Error()})
			continue
		}
		if i < from { // stored before: only its verdict is wanted, for the report
			if id, refused := s.Ingest.Check(raw); refused != nil {
				report.Refused = append(report.Refused, reportMessage(i, id, refused))
			} else {
				report.Stored++
			}
			continue
		}
		out := s.Ingest.Receive(ctx, raw, Origin{File: name, FileDigest: digest, FileIndex: i})
		switch {
		case out.Stored:
			report.Stored++
		case out.Err != nil:
			report.Refused = append(report.Refused, reportMessage(i, out.ControlID, out.Err))
		default:
			return fmt.Errorf("message %d: %w", i, errStoreUnavailable)
		}
	}
	if s.Sync != nil {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("%w: %v", errStoreUnavailable, err)
		}
	}
	if s.Metrics != nil {
		s.Metrics.Bytes.WithLabelValues(s.Config.Name).Add(float64(len(data)))
	}
	// Written to again while its messages were stored: the file stays, and
	// is read again whole once stable (its first messages may be stored
	// twice, under the new content's digest; none is lost).
	if err := s.unchanged(ctx, f, int64(len(data))); err != nil {
		log.Warn().Int("stored", report.Stored).Msg("file changed after its messages were stored; it will be read again whole once stable")
		return err
	}
	log.Info().Int("messages", report.Messages).Int("stored", report.Stored).Int("refused", len(report.Refused)).Int("size", len(data)).Msg("file read")
	return s.finish(ctx, f, data, report, log)
}

// unchanged checks that f still has the size and time it was listed
// with, and that read bytes of it were read.
func (s *FileSource) unchanged(ctx context.Context, f listed, read int64) error {
	now, err := s.folder.stat(ctx, f)
	if err != nil {
		return fmt.Errorf("%w (%v)", errFileChanged, err)
	}
	if now.size != f.size || !now.modTime.Equal(f.modTime) || read != f.size {
		return errFileChanged
	}
	return nil
}

// resumeAt is the index to store from: after the last message stored,
// when that was this file's.
func (s *FileSource) resumeAt(ctx context.Context, name, digest string) (int, error) {
	if s.LastPlace == nil {
		return 0, nil
	}
	last, ok, err := s.LastPlace(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errStoreUnavailable, err)
	}
	if !ok || last.Digest != digest || last.File != name {
		return 0, nil
	}
	return last.Index + 1, nil
}

func reportMessage(i int, controlID string, e *hl7.Error) ReportMessage {
	return ReportMessage{Index: i, ControlID: controlID, Code: int(e.Code), Location: e.Location.String(), Reason: e.Reason}
}

// splitReason says why a file could not be split, without its bytes.
func splitReason(err error) string {
	var he *hl7.Error
	if errors.As(err, &he) {
		return fmt.Sprintf("%s (code %d at %s)", he.Reason, he.Code, he.Location)
	}
	return err.Error()
}

// finish moves a file read to the end to done_dir (or deletes it), or,
// with refused messages, to error_dir with its report.
func (s *FileSource) finish(ctx context.Context, f listed, data []byte, report *Report, log zerolog.Logger) error {
	refused := len(report.Refused) > 0 || report.Error != ""
	dest, err := s.folder.finish(ctx, f, data, refused)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotMoved, err)
	}
	outcome := "done"
	if refused {
		outcome = "error"
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := s.folder.writeReport(ctx, dest, append(b, '\n')); err != nil {
			log.Error().Str("reason", err.Error()).Msg("the error report could not be written")
		}
		log.Warn().Str("to", dest).Int("refused", len(report.Refused)).Msg("file moved to the error folder, with a report")
	}
	if s.Metrics != nil {
		s.Metrics.Files.WithLabelValues(s.Config.Name, outcome).Inc()
	}
	return nil
}
