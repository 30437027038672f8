package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
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

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
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
	var snd *feed.Sender
	if !o.validateOnly {
		if snd, err = newFeed(o); err != nil {
			return err
		}
		defer snd.Close()
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
		} else if err := snd.File(cmd.Context(), sv, file, data); err != nil {
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
	if sv.Survey.Invalid+sv.Survey.FilesRefused > 0 || (snd != nil && snd.Refused > 0) {
		return exitError{1}
	}
	return nil
}

// newFeed is the sender --to, --tls, --token-file and the rest ask for.
func newFeed(o importOptions) (*feed.Sender, error) {
	tc, err := o.tls.config()
	if err != nil {
		return nil, err
	}
	fo := feed.Options{To: o.to, TLS: tc, Batch: o.batch, Rate: o.rate, Timeout: o.timeout, StatePath: o.state}
	if feed.IsHTTP(o.to) {
		if o.tokenFile == "" {
			return nil, usageError("--to URL needs --token-file: the HTTP source's bearer token")
		}
		tok, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, usageError("--token-file: " + err.Error())
		}
		fo.Token = strings.TrimSpace(string(tok))
	}
	snd, err := feed.NewSender(fo)
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	return snd, nil
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

func printSurvey(w io.Writer, s ingest.Survey, snd *feed.Sender) {
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
		fmt.Fprintf(w, "sent %d (not AA/CA: %d), already sent by an earlier run: %d\n", snd.Sent, snd.Refused, snd.Skipped)
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
