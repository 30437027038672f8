package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

type importOptions struct {
	validateOnly bool
	to           string
	tls          clientTLSFlags
	rate         float64
	report       string
	config       string
	listener     string
	state        string
	timeout      time.Duration
	progress     time.Duration
	batch        int
	tokenFile    string
}

func newImportCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import PATH... (--validate-only | --to HOST:PORT | --to URL) [flags]",
		Short: "Validate HL7 files for a migration, and feed them to a running broker",
		Long: `Import reads HL7 files and folders (batches and back-to-back messages), checks
every message as a broker's ingest would (parse, MSH, and with --config the
listener's or source's limits and accept_types), and prints a summary: files,
messages, valid, invalid by error code, duplicates by content and control IDs
reused for other content. --report writes each problem (file, index, control
ID, code, location, reason; never field values) as CSV or JSON.

With --validate-only nothing is sent. Otherwise the valid messages are sent in
order to --to, each ACK checked, at most --rate a second: over MLLP to a
listener (HOST:PORT), or to an HTTP source (http:// or https:// URL, with
--token-file), --batch messages per request. --state records how far each
file got, so an interrupted import started again resumes where it stopped
(the broker recognises the few messages sent twice).

Exit code 0: every message valid (and, when sending, acknowledged AA/CA);
1: some were not; 2: usage.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImport(cmd, args, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.validateOnly, "validate-only", false, "check and report; send nothing")
	f.StringVar(&o.to, "to", "", "what to feed: a broker's MLLP listener (HOST:PORT) or HTTP source (URL)")
	f.IntVar(&o.batch, "batch", 100, "messages per request to an HTTP source")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the HTTP source's bearer token")
	o.tls.register(f)
	f.Float64Var(&o.rate, "rate", 0, "messages per second at most (0: as fast as ACKs come back)")
	f.StringVar(&o.report, "report", "", "write the problems to FILE.csv or FILE.json")
	f.StringVar(&o.config, "config", "", "a broker config whose listener or source sets the checks")
	f.StringVar(&o.listener, "listener", "", "the listener or source (of --config) the messages will arrive at")
	f.StringVar(&o.state, "state", "hl7broker-import.state", "where progress is kept, to resume an interrupted import")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	f.DurationVar(&o.progress, "progress", time.Second, "a progress line this often on stderr (0: none)")
	return cmd
}

func runImport(cmd *cobra.Command, args []string, o importOptions) error {
	if o.validateOnly == (o.to != "") {
		return errors.New("give --validate-only or --to HOST:PORT or URL (one of them)")
	}
	intake, err := importIntake(o)
	if err != nil {
		return err
	}
	files, total, err := importFiles(args)
	if err != nil {
		return err
	}
	sv := ingest.NewSurveyor(ingest.New(intake, nil, zerolog.Nop()))
	if sv.Route, err = importRouting(o, intake.Name); err != nil {
		return err
	}
	var snd *importSender
	if !o.validateOnly {
		if snd, err = newImportSender(cmd.Context(), o); err != nil {
			return err
		}
		defer snd.close()
	}
	prog := newImportProgress(cmd.ErrOrStderr(), o.progress, total)
	defer prog.stop()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			sv.Survey.Files++
			sv.Survey.FilesRefused++
			sv.Survey.Problems = append(sv.Survey.Problems, ingest.SurveyProblem{File: file,
				ReportMessage: ingest.ReportMessage{Index: -1, Location: "file", Reason: err.Error()}})
			continue
		}
		if o.validateOnly {
			sv.File(file, data)
		} else if err := snd.file(cmd.Context(), sv, file, data); err != nil {
			printSurvey(cmd.OutOrStdout(), sv.Survey, snd)
			fmt.Fprintln(cmd.ErrOrStderr(), "hl7broker import:", err)
			return exitError{1}
		}
		prog.add(int64(len(data)), sv.Survey)
	}
	prog.stop()
	printSurvey(cmd.OutOrStdout(), sv.Survey, snd)
	if o.report != "" {
		if err := writeSurveyReport(o.report, sv.Survey); err != nil {
			return err
		}
	}
	if sv.Survey.Invalid+sv.Survey.FilesRefused > 0 || (snd != nil && snd.refused > 0) {
		return exitError{1}
	}
	return nil
}

// importIntake is the checks' settings: a listener's or source's of
// --config, else the defaults.
func importIntake(o importOptions) (config.ListenerConfig, error) {
	if o.config == "" {
		if o.listener != "" {
			return config.ListenerConfig{}, errors.New("--listener needs --config")
		}
		return config.ListenerConfig{Name: "import", MaxMessageBytes: config.DefaultMaxMessageBytes}, nil
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return config.ListenerConfig{}, err
	}
	for _, l := range cfg.Intakes() {
		if o.listener == "" || l.Name == o.listener {
			return l, nil
		}
	}
	return config.ListenerConfig{}, fmt.Errorf("%s has no listener or source named %q", o.config, o.listener)
}

// importRouting is, with --config, what its routes would do with each
// message arriving at listener (nil without --config).
func importRouting(o importOptions, listener string) (func(*hl7.Message, []byte) ingest.Routed, error) {
	if o.config == "" {
		return nil, nil
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	routes, err := broker.CompileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	return func(m *hl7.Message, raw []byte) ingest.Routed {
		plan := routing.Evaluate(routes, cfg.Unrouted.To, condition.Input{Listener: listener, Message: m}, raw, false)
		r := ingest.Routed{Unrouted: plan.Unrouted}
		for _, c := range plan.Copies {
			r.Destinations = append(r.Destinations, c.Destination)
		}
		for _, d := range plan.DeadLetters {
			r.FailedRoutes = append(r.FailedRoutes, d.Route)
		}
		return r
	}, nil
}

// importFiles expands folders into their files (recursively, leaving out
// hidden ones), in name order, and sums their sizes.
func importFiles(args []string) ([]string, int64, error) {
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

// importSender feeds a broker and keeps the progress state.
type importSender struct {
	to       importTransport
	o        importOptions
	state    map[string]int // file digest -> messages done
	saved    time.Time
	sent     int
	skipped  int // done in an earlier run
	refused  int // negative or missing ACKs
	interval time.Duration
	last     time.Time
}

// importTransport sends messages to a broker and returns each one's ACK
// code (MSA-1; "" when none came back for it). An error ends the import
// (it resumes from --state).
type importTransport interface {
	send(ctx context.Context, msgs [][]byte) ([]string, error)
	batch() int // messages per send
	close()
}

func newImportSender(ctx context.Context, o importOptions) (*importSender, error) {
	tc, err := o.tls.config()
	if err != nil {
		return nil, err
	}
	s := &importSender{o: o, state: map[string]int{}}
	if strings.HasPrefix(o.to, "http://") || strings.HasPrefix(o.to, "https://") {
		if s.to, err = newHTTPImport(o, tc); err != nil {
			return nil, err
		}
	} else {
		s.to = mllpImport{&mllp.Client{Addr: o.to, TLSConfig: tc, ReplyTimeout: o.timeout}}
	}
	if o.rate > 0 {
		s.interval = time.Duration(float64(time.Second) / o.rate)
	}
	if b, err := os.ReadFile(o.state); err == nil {
		if err := json.Unmarshal(b, &s.state); err != nil {
			return nil, fmt.Errorf("--state %s: %w", o.state, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--state: %w", err)
	}
	return s, nil
}

func (s *importSender) close() {
	_ = s.save()
	s.to.close()
}

func (s *importSender) save() error {
	b, _ := json.Marshal(s.state)
	tmp := s.o.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, s.o.state)
}

// file surveys one file and sends its valid messages in order, after
// those an earlier run had sent, s.to.batch() at a time.
func (s *importSender) file(ctx context.Context, sv *ingest.Surveyor, name string, data []byte) error {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	msgs, valid := sv.File(name, data)
	done := s.state[digest]
	var pending [][]byte
	flush := func(upTo int) error { // messages before index upTo are done
		if len(pending) > 0 {
			if err := s.send(ctx, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
		s.state[digest] = upTo
		if time.Since(s.saved) >= time.Second {
			if err := s.save(); err != nil {
				return fmt.Errorf("--state: %w", err)
			}
			s.saved = time.Now()
		}
		return nil
	}
	for i := range msgs {
		if i < done {
			s.skipped++
			continue
		}
		if valid[i] {
			pending = append(pending, msgs[i])
		}
		if len(pending) >= s.to.batch() || i == len(msgs)-1 {
			if err := flush(i + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// send sends messages and checks their ACKs; a negative or missing one is
// counted.
func (s *importSender) send(ctx context.Context, msgs [][]byte) error {
	if s.interval > 0 {
		if wait := time.Until(s.last.Add(s.interval * time.Duration(len(msgs)))); wait > 0 {
			time.Sleep(wait)
		}
		s.last = time.Now()
	}
	codes, err := s.to.send(ctx, msgs)
	if err != nil {
		return fmt.Errorf("sending to %s: %w (run the same command again to resume)", secret.URL(s.o.to), err)
	}
	s.sent += len(msgs)
	for _, c := range codes {
		if c != string(hl7.AA) && c != string(hl7.CA) {
			s.refused++
		}
	}
	return nil
}

// mllpImport sends one message at a time over MLLP.
type mllpImport struct{ client *mllp.Client }

func (m mllpImport) batch() int { return 1 }
func (m mllpImport) close()     { _ = m.client.Close() }

func (m mllpImport) send(ctx context.Context, msgs [][]byte) ([]string, error) {
	codes := make([]string, len(msgs))
	for i, raw := range msgs {
		reply, err := m.client.Send(ctx, raw)
		if err != nil {
			return nil, err
		}
		if ack, err := hl7.ParseAck(reply); err == nil {
			codes[i] = string(ack.Code)
		}
	}
	return codes, nil
}

// httpImport POSTs messages back to back to an HTTP source, and reads
// their ACKs, one per message in order, from the response. A 503 (the
// broker could not store some now) is sent again after its Retry-After,
// up to the --timeout: what was stored is recognised as a resend.
type httpImport struct {
	url, token string
	size       int
	timeout    time.Duration
	client     *http.Client
}

func newHTTPImport(o importOptions, tc *tls.Config) (*httpImport, error) {
	if o.tokenFile == "" {
		return nil, usageError("--to URL needs --token-file: the HTTP source's bearer token")
	}
	tok, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return nil, usageError("--token-file: " + err.Error())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &httpImport{url: o.to, token: strings.TrimSpace(string(tok)), size: max(o.batch, 1), timeout: o.timeout,
		client: &http.Client{Transport: tr, Timeout: o.timeout}}, nil
}

func (h *httpImport) batch() int { return h.size }
func (h *httpImport) close()     { h.client.CloseIdleConnections() }

func (h *httpImport) send(ctx context.Context, msgs [][]byte) ([]string, error) {
	body := bytes.Join(msgs, nil)
	deadline := time.Now().Add(h.timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", ingest.ContentTypeER7)
		req.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := h.client.Do(req)
		if err != nil {
			return nil, secret.Error(err)
		}
		reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline):
			wait := time.Second
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
				wait = time.Duration(n) * time.Second
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			continue
		case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest:
			return nil, fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(reply[:min(len(reply), 200)])))
		}
		return ackCodes(reply, len(msgs)), nil
	}
}

// ackCodes are the MSA-1 codes of the ACKs back to back in reply, n of
// them ("" for any missing).
func ackCodes(reply []byte, n int) []string {
	codes := make([]string, n)
	if b, err := hl7.SplitBatch(reply, hl7.Limits{MaxMessageBytes: len(reply) + 1}); err == nil {
		for i, raw := range b.Messages {
			if i >= n {
				break
			}
			if ack, err := hl7.ParseAck(raw); err == nil {
				codes[i] = string(ack.Code)
			}
		}
	}
	return codes
}

// importProgress prints a progress line with a bar by bytes read.
type importProgress struct {
	w        io.Writer
	total    int64
	read     int64
	survey   ingest.Survey
	every    time.Duration
	lastLine time.Time
	started  time.Time
	stopped  bool
}

func newImportProgress(w io.Writer, every time.Duration, total int64) *importProgress {
	return &importProgress{w: w, total: total, every: every, started: time.Now(), lastLine: time.Now()}
}

func (p *importProgress) add(n int64, sv ingest.Survey) {
	p.read += n
	p.survey = sv
	if p.every > 0 && time.Since(p.lastLine) >= p.every {
		p.line()
		p.lastLine = time.Now()
	}
}

func (p *importProgress) line() {
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.read) / float64(p.total)
	}
	bar := strings.Repeat("#", int(frac*20)) + strings.Repeat(".", 20-int(frac*20))
	secs := time.Since(p.started).Seconds()
	fmt.Fprintf(p.w, "[%s] %3.0f%%  files %d  messages %d  invalid %d  %.0f msg/s\n", bar, frac*100,
		p.survey.Files, p.survey.Messages, p.survey.Invalid, float64(p.survey.Messages)/max(secs, 1e-9))
}

func (p *importProgress) stop() {
	if !p.stopped && p.every > 0 {
		p.line()
	}
	p.stopped = true
}

func printSurvey(w io.Writer, s ingest.Survey, snd *importSender) {
	fmt.Fprintf(w, "files %d (%d refused whole), messages %d: valid %d, invalid %d\n", s.Files, s.FilesRefused, s.Messages, s.Valid, s.Invalid)
	if len(s.ByCode) > 0 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(s.ByCode)) {
			parts = append(parts, fmt.Sprintf("%d (%s) %d", c, hl7.ErrorCode(c).Text(), s.ByCode[c]))
		}
		fmt.Fprintf(w, "invalid by code: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "duplicates by content: %d\ncontrol IDs reused for other content: %d\n", s.DuplicateContent, s.ReusedControlIDs)
	if s.ByDestination != nil {
		fmt.Fprintf(w, "routing (per --config): copies by destination: %s; no route: %d; transform failed: %s\n",
			countList(s.ByDestination), s.Unrouted, countList(s.TransformFailed))
	}
	if snd != nil {
		fmt.Fprintf(w, "sent %d (not AA/CA: %d), already sent by an earlier run: %d\n", snd.sent, snd.refused, snd.skipped)
	}
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

// writeSurveyReport writes the problems as CSV (one per line) or the whole
// survey as JSON, by the file's extension.
func writeSurveyReport(name string, s ingest.Survey) error {
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
