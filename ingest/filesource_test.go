package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileMsg is a small ADT with control ID id; the name is PHI-like on purpose.
func fileMsg(id string) string {
	return "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ADT^A08^ADT_A01|" + id + "|P|2.5.1\rPID|1||MRN" + id + "^^^H^MR||Zyxwquist^Ann\r"
}

// fileSourceFixture is a file source over a fresh embedded JetStream,
// with the folder it watches.
type fileSourceFixture struct {
	nats    *store.NATS
	src     *FileSource
	dir     string
	commits atomic.Int64 // commits that reached the store
	failAt  atomic.Int64 // when > 0, commit number failAt and later fail
}

func newFileFixture(t testing.TB, cfg config.SourceConfig) *fileSourceFixture {
	t.Helper()
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return fileSourceOn(t, n, cfg)
}

func fileSourceOn(t testing.TB, n *store.NATS, cfg config.SourceConfig) *fileSourceFixture {
	t.Helper()
	f := &fileSourceFixture{nats: n}
	if cfg.Options == nil {
		cfg.Options = &FolderOptions{}
	}
	var folder *FolderOptions // the test's clock decides stable_for; scan is called without poll
	switch o := cfg.Options.(type) {
	case *FolderOptions:
		folder = o
	case *SFTPOptions:
		folder = &o.FolderOptions
	}
	if folder.Dir == "" {
		folder.Dir = filepath.Join(t.TempDir(), "in")
	}
	folder.Glob, folder.OnDone = "*", "move"
	cfg.Name, cfg.Type = "labfiles", cmp.Or(cfg.Type, "file")
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = config.DefaultMaxMessageBytes
	}
	f.dir = folder.Dir
	require.NoError(t, os.MkdirAll(f.dir, 0o750))
	in := New(cfg.Listener(), countingCommitter{n.BatchCommitter(5 * time.Second), f}, zerolog.Nop())
	f.src = &FileSource{Config: cfg, Ingest: in, Log: zerolog.Nop(), Sync: n.Sync,
		LastPlace: func(ctx context.Context) (store.FilePlace, bool, error) { return n.LastFilePlace(ctx, cfg.Name) }}
	return f
}

// countingCommitter counts what reaches the real store, and can refuse
// from a given commit on, as a store that went away would.
type countingCommitter struct {
	store.Committer
	f *fileSourceFixture
}

func (c countingCommitter) Commit(ctx context.Context, r *store.Received) (store.Stored, error) {
	if at := c.f.failAt.Load(); at > 0 && c.f.commits.Load()+1 >= at {
		return store.Stored{}, fmt.Errorf("store unavailable")
	}
	c.f.commits.Add(1)
	return c.Committer.Commit(ctx, r)
}

func (f *fileSourceFixture) write(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o640))
	return p
}

// scanUntil scans until cond holds, failing with what it waited for.
func (f *fileSourceFixture) scanUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, func() error {
		require.NoError(t, f.src.scan(context.Background()))
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestFileSourceStoresABatchThenMovesTheFile(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{})
	batch := "FHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + fileMsg("F1") + fileMsg("F2") + fileMsg("F3") + "BTS|3\rFTS|1\r"
	f.write(t, "batch1.hl7", batch)
	done, _ := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "batch1.hl7 in done/", func() bool { return exists(filepath.Join(done, "batch1.hl7")) })

	assert.False(t, exists(filepath.Join(f.dir, "batch1.hl7")), "the file left the folder")
	assert.EqualValues(t, 3, streamCount(t, f.nats))
	last, ok, err := f.nats.LastFilePlace(context.Background(), "labfiles")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, store.FilePlace{File: "batch1.hl7", Digest: last.Digest, Index: 2}, last)
	assert.Len(t, last.Digest, 64)

	s, err := f.nats.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, "F1", m.Header.Get(wire.HeaderControlID))
	assert.Equal(t, "0", m.Header.Get(wire.HeaderFileIndex))
	assert.Equal(t, "labfiles", m.Header.Get(wire.HeaderListener))
	assert.Equal(t, wire.InSubject("labfiles", "ADT", "A08"), m.Subject)
}

func TestFileSourceReportsRefusedMessagesAndKeepsTheRest(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{AcceptTypes: []string{"ADT"}})
	noType := strings.Replace(fileMsg("F2"), "ADT^A08^ADT_A01", "", 1)
	oru := strings.Replace(fileMsg("F3"), "ADT^A08^ADT_A01", "ORU^R01", 1)
	f.write(t, "mixed.hl7", fileMsg("F1")+noType+oru+fileMsg("F4"))
	_, failed := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "mixed.hl7 in error/", func() bool { return exists(filepath.Join(failed, "mixed.hl7.report.json")) })

	assert.True(t, exists(filepath.Join(failed, "mixed.hl7")))
	assert.EqualValues(t, 2, streamCount(t, f.nats), "the good messages are stored")
	raw, err := os.ReadFile(filepath.Join(failed, "mixed.hl7.report.json"))
	require.NoError(t, err)
	var r Report
	require.NoError(t, json.Unmarshal(raw, &r))
	assert.Equal(t, 4, r.Messages)
	assert.Equal(t, 2, r.Stored)
	require.Len(t, r.Refused, 2)
	assert.Equal(t, ReportMessage{Index: 1, ControlID: "F2", Code: 101, Location: "MSH-9.1", Reason: r.Refused[0].Reason}, r.Refused[0])
	assert.Equal(t, 2, r.Refused[1].Index)
	assert.Equal(t, 200, r.Refused[1].Code, "unsupported message type")
	assert.Equal(t, "MSH-9.1", r.Refused[1].Location)
	for _, phi := range []string{"Zyxwquist", "MRNF2", "MRNF3"} {
		assert.NotContains(t, string(raw), phi, "the report holds no field values")
	}
}

func TestFileSourceHoldsEachMessageNotTheFileToTheLimit(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{MaxMessageBytes: 1024})
	var content strings.Builder
	for i := range 20 {
		content.WriteString(fileMsg(fmt.Sprintf("S%d", i)))
	}
	big := "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ADT^A08|BIG|P|2.5.1\rNTE|1||" + strings.Repeat("x", 2000) + "\r"
	content.WriteString(big)
	require.Greater(t, content.Len(), 2048)
	f.write(t, "many.hl7", content.String())
	_, failed := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "many.hl7 in error/", func() bool { return exists(filepath.Join(failed, "many.hl7.report.json")) })
	assert.EqualValues(t, 20, streamCount(t, f.nats), "a file larger than max_message_bytes is read; its small messages stored")
	raw, err := os.ReadFile(filepath.Join(failed, "many.hl7.report.json"))
	require.NoError(t, err)
	var r Report
	require.NoError(t, json.Unmarshal(raw, &r))
	require.Len(t, r.Refused, 1, "only the message over the limit is refused")
	assert.Equal(t, 20, r.Refused[0].Index)
}

func TestFileSourceRefusesAFileThatIsNotHL7(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{})
	f.write(t, "notes.txt", "PID|1||MRN1^^^H^MR||Zyxwquist^Ann\r")
	_, failed := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "notes.txt in error/", func() bool { return exists(filepath.Join(failed, "notes.txt.report.json")) })
	raw, err := os.ReadFile(filepath.Join(failed, "notes.txt.report.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"error": "`)
	assert.NotContains(t, string(raw), "Zyxwquist")
	assert.EqualValues(t, 0, streamCount(t, f.nats))
}

func TestFileSourceResumesAfterAFailureWithoutStoringTwice(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{})
	var content strings.Builder
	for i := 1; i <= 5; i++ {
		content.WriteString(fileMsg(fmt.Sprintf("R%d", i)))
	}
	p := f.write(t, "five.hl7", content.String())
	f.failAt.Store(4) // the store goes away after three messages
	require.NoError(t, f.src.scan(context.Background()))
	assert.True(t, exists(p), "a file whose messages could not all be stored stays")
	assert.EqualValues(t, 3, streamCount(t, f.nats))

	// A new run (as after a crash): the store is back.
	again := fileSourceOn(t, f.nats, f.src.Config)
	done, _ := FolderOf(again.src.Config).FileDirs()
	again.scanUntil(t, "five.hl7 in done/", func() bool { return exists(filepath.Join(done, "five.hl7")) })
	assert.EqualValues(t, 2, again.commits.Load(), "only the messages after the last one stored are sent to the store")
	assert.EqualValues(t, 5, streamCount(t, f.nats))
}

func TestFileSourceWaitsForACompleteFile(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{Options: &FolderOptions{StableFor: time.Second}})
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.src.now = func() time.Time { return clock }
	p := f.write(t, "growing.hl7", fileMsg("G1"))
	tmp := f.write(t, "late.hl7.part", fileMsg("L1"))

	require.NoError(t, f.src.scan(context.Background())) // first seen
	clock = clock.Add(2 * time.Second)
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteString(fileMsg("G2"))
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	require.NoError(t, f.src.scan(context.Background())) // it grew: seen anew
	clock = clock.Add(500 * time.Millisecond)
	require.NoError(t, f.src.scan(context.Background())) // unchanged for 0.5 s only
	assert.True(t, exists(p), "a file that changed within stable_for is not read")
	assert.EqualValues(t, 0, streamCount(t, f.nats))

	clock = clock.Add(time.Second)
	require.NoError(t, f.src.scan(context.Background()))
	assert.False(t, exists(p), "read once unchanged for stable_for")
	assert.EqualValues(t, 2, streamCount(t, f.nats), "both messages, the one written late included")
	assert.True(t, exists(tmp), "a file under a temporary name is left alone")

	require.NoError(t, os.Rename(tmp, filepath.Join(f.dir, "late.hl7")))
	for range 2 {
		clock = clock.Add(2 * time.Second)
		require.NoError(t, f.src.scan(context.Background()))
	}
	assert.EqualValues(t, 3, streamCount(t, f.nats), "read once renamed")
}

// A source's charset is checked as each message is stored: a byte the
// charset cannot hold is logged with the file, index and offset (never the
// text) and counted, and the message is stored as it is.
func TestSourceCharsetMismatchIsLoggedAndCounted(t *testing.T) {
	var logs syncbuf.Buffer
	f := newFileFixture(t, config.SourceConfig{})
	warnings := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "w"}, []string{"source"})
	in := New(f.src.Config.Listener(), f.src.Ingest.committer, zerolog.New(&logs))
	in.Charset = &CharsetCheck{Configured: "ASCII", Warnings: warnings}
	f.src.Ingest = in
	f.write(t, "names.hl7", fileMsg("C1")+strings.Replace(fileMsg("C2"), "Zyxwquist", "Zyxwqüist", 1))
	done, _ := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "names.hl7 in done/", func() bool { return exists(filepath.Join(done, "names.hl7")) })
	assert.EqualValues(t, 2, streamCount(t, f.nats), "both stored, as they are")
	assert.Equal(t, 1.0, testutil.ToFloat64(warnings.WithLabelValues("labfiles")))
	assert.Contains(t, logs.String(), `"file":"names.hl7","index":1`)
	assert.Contains(t, logs.String(), "bytes do not match the character set")
	assert.NotContains(t, logs.String(), "Zyxwq")
}

// oruFile is a lab result file with two results; cut anywhere before its
// end it still parses, with a value cut short (5 for 5.4) or a result gone.
const oruFile = "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20261206120000||ORU^R01|CUT1|P|2.5.1\r" +
	"PID|1||MRN7^^^H^MR||Zyxwquist^Ann\r" +
	"OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L\r" +
	"OBX|2|NM|2823-3^Potassium^LN||4.1|mmol/L\r"

// storedBody is the one message stored in HL7_IN.
func storedBody(t *testing.T, n *store.NATS) string {
	t.Helper()
	s, err := n.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	return string(m.Data)
}

// A writer that pauses longer than stable_for with the file open is not
// read until it closes the file: nothing is stored cut short.
func TestFileSourceWaitsForAWriterThatPausesLongerThanStableFor(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{Options: &FolderOptions{StableFor: time.Second}})
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f.src.now = func() time.Time { return clock }
	p := filepath.Join(f.dir, "result.hl7")
	w, err := os.Create(p)
	require.NoError(t, err)
	cut := strings.Index(oruFile, "5.4") + 1
	_, err = w.WriteString(oruFile[:cut]) // "…||5", then the writer pauses
	require.NoError(t, err)

	for range 3 { // stable for 2.5 s by size and time
		require.NoError(t, f.src.scan(context.Background()))
		clock = clock.Add(1250 * time.Millisecond)
	}
	assert.True(t, exists(p), "a file its writer still holds open is not taken")
	assert.EqualValues(t, 0, streamCount(t, f.nats), "nothing stored cut short")

	_, err = w.WriteString(oruFile[cut:])
	require.NoError(t, err)
	require.NoError(t, w.Close())
	done, _ := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "result.hl7 in done/", func() bool {
		clock = clock.Add(1250 * time.Millisecond)
		return exists(filepath.Join(done, "result.hl7"))
	})
	require.EqualValues(t, 1, streamCount(t, f.nats))
	assert.Equal(t, oruFile, storedBody(t, f.nats), "stored whole: 5.4 and the potassium result")
}

// growingFolder is a local folder whose file grows right after each of
// the first reads of it, as a writer that resumes mid-read would.
type growingFolder struct {
	localFolder
	grow *atomic.Int64 // reads left that are followed by an append
	rest string
}

func (g growingFolder) read(ctx context.Context, f listed) ([]byte, error) {
	data, err := g.localFolder.read(ctx, f)
	if g.grow.Add(-1) >= 0 {
		fh, ferr := os.OpenFile(f.path, os.O_APPEND|os.O_WRONLY, 0)
		if ferr == nil {
			_, _ = fh.WriteString(g.rest)
			_ = fh.Close()
		}
	}
	return data, err
}

// A file whose size or time moved while it was read (a writer without
// the file held open: it reopens to append) is not stored; it is read
// again once stable, whole.
func TestFileSourceLeavesAFileThatChangedWhileRead(t *testing.T) {
	f := newFileFixture(t, config.SourceConfig{})
	cut := strings.Index(oruFile, "5.4") + 1
	p := f.write(t, "result.hl7", oruFile[:cut])
	var grow atomic.Int64
	grow.Store(1)
	f.src.folder = growingFolder{localFolder: localFolder{cfg: FolderOf(f.src.Config)}, grow: &grow, rest: oruFile[cut:]}

	require.NoError(t, f.src.scan(context.Background()))
	assert.True(t, exists(p), "a file that changed while read stays")
	assert.EqualValues(t, 0, streamCount(t, f.nats), "nothing stored cut short")

	done, _ := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "result.hl7 in done/", func() bool { return exists(filepath.Join(done, "result.hl7")) })
	require.EqualValues(t, 1, streamCount(t, f.nats))
	assert.Equal(t, oruFile, storedBody(t, f.nats))
}

// stuckFolder is a local folder whose finish fails while fail is set, as
// a read-only done_dir does (root may write anywhere, so a chmod would
// not stop the tests' root).
type stuckFolder struct {
	localFolder
	fail     *atomic.Bool
	finishes *atomic.Int64
}

func (s stuckFolder) finish(ctx context.Context, f listed, data []byte, refused bool) (string, error) {
	s.finishes.Add(1)
	if s.fail.Load() {
		return "", &os.PathError{Op: "rename", Path: f.path, Err: syscall.EROFS}
	}
	return s.localFolder.finish(ctx, f, data, refused)
}

// A file read whose move fails (done_dir read-only) is not read again at
// every poll: it is tried after a backoff that doubles, with one warning
// a try; the source's Problem (in /readyz) and gauge say so; its messages
// are stored once; once the folder is writable it moves on.
func TestFileSourceBacksOffAFileItCannotMoveOn(t *testing.T) {
	var logs syncbuf.Buffer
	f := newFileFixture(t, config.SourceConfig{Options: &FolderOptions{Poll: time.Second}})
	f.src.Log = zerolog.New(&logs)
	stuck := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stuck"}, []string{"source"})
	f.src.Metrics = &FileMetrics{Files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "f"}, []string{"source", "outcome"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b"}, []string{"source"}), Stuck: stuck}
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f.src.now = func() time.Time { return clock }
	var fail atomic.Bool
	var finishes atomic.Int64
	fail.Store(true)
	f.src.folder = stuckFolder{localFolder: localFolder{cfg: FolderOf(f.src.Config)}, fail: &fail, finishes: &finishes}
	p := f.write(t, "adt.hl7", fileMsg("RO1"))

	tries := []int64{}
	for range 8 { // 8 polls a second apart: tries at 0, 1, 3 (+1 s, +2 s) and 7 s (+4 s)
		require.NoError(t, f.src.scan(context.Background()))
		tries = append(tries, finishes.Load())
		clock = clock.Add(time.Second)
	}
	assert.Equal(t, []int64{1, 2, 2, 3, 3, 3, 3, 4}, tries, "tried again after 1, 2 and 4 s, not at every poll")
	assert.EqualValues(t, 1, streamCount(t, f.nats), "stored once")
	assert.True(t, exists(p), "the file stays")
	assert.Contains(t, f.src.Problem(), "1 file(s) read but not moved on, the first (adt.hl7)")
	assert.Contains(t, f.src.Problem(), "read-only file system")
	assert.Equal(t, 1.0, testutil.ToFloat64(stuck.WithLabelValues("labfiles")))
	assert.Equal(t, 4, strings.Count(logs.String(), "cannot be moved on"), "one warning a try")

	fail.Store(false)
	clock = clock.Add(10 * time.Second)
	require.NoError(t, f.src.scan(context.Background()))
	done, _ := FolderOf(f.src.Config).FileDirs()
	assert.True(t, exists(filepath.Join(done, "adt.hl7")), "moved once the folder is writable")
	assert.Empty(t, f.src.Problem())
	assert.Equal(t, 0.0, testutil.ToFloat64(stuck.WithLabelValues("labfiles")))
	assert.EqualValues(t, 1, streamCount(t, f.nats), "still stored once")
}

// A symbolic link in the inbox is not read (it could point anywhere),
// and says so once, not at every poll.
func TestFileSourceSaysOnceThatItSkipsASymlink(t *testing.T) {
	var logs syncbuf.Buffer
	f := newFileFixture(t, config.SourceConfig{})
	f.src.Log = zerolog.New(&logs)
	target := filepath.Join(t.TempDir(), "elsewhere.hl7")
	require.NoError(t, os.WriteFile(target, []byte(fileMsg("L1")), 0o640))
	require.NoError(t, os.Symlink(target, filepath.Join(f.dir, "link.hl7")))
	for range 3 {
		require.NoError(t, f.src.scan(context.Background()))
	}
	assert.EqualValues(t, 0, streamCount(t, f.nats))
	assert.Equal(t, 1, strings.Count(logs.String(), "file skipped"), logs.String())
	assert.Contains(t, logs.String(), `"file":"link.hl7"`)
	assert.Contains(t, logs.String(), "reads regular files only")
}
