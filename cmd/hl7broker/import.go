package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/ingest"
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
	intake, routed, profile, rules, err := importChecks(o)
	if err != nil {
		return err
	}
	files, total, err := feed.Files(args)
	if err != nil {
		return err
	}
	in := ingest.New(intake, nil, zerolog.Nop())
	in.Profile, in.Rules = profile, rules
	sv := ingest.NewSurveyor(in)
	sv.Route = routed
	var snd *feed.Sender
	if !o.validateOnly {
		if snd, err = newFeed(o); err != nil {
			return err
		}
		defer snd.Close()
	}
	prog := feed.NewProgress(cmd.ErrOrStderr(), o.progress, total)
	defer prog.Stop()
	imp := &feed.Import{Survey: sv, Sender: snd, Progress: prog}
	if err := imp.Run(cmd.Context(), files); err != nil {
		feed.PrintSurvey(cmd.OutOrStdout(), sv.Survey, snd)
		fmt.Fprintln(cmd.ErrOrStderr(), "hl7broker import:", err)
		return exitError{1}
	}
	prog.Stop()
	feed.PrintSurvey(cmd.OutOrStdout(), sv.Survey, snd)
	if o.report != "" {
		if err := feed.WriteReport(o.report, sv.Survey); err != nil {
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

// importChecks are the checks' settings (a listener's or source's of
// --config, else the defaults) and, with --config, where its routes would
// send each message.
func importChecks(o importOptions) (config.ListenerConfig, func(*hl7.Message, []byte) ingest.Routed, *spec.Profile, config.SiteRules, error) {
	if o.config == "" {
		if o.listener != "" {
			return config.ListenerConfig{}, nil, nil, nil, errors.New("--listener needs --config")
		}
		return config.ListenerConfig{Name: "import", MaxMessageBytes: config.DefaultMaxMessageBytes, Validation: "record"}, nil, nil, nil, nil
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return config.ListenerConfig{}, nil, nil, nil, err
	}
	trial, err := broker.NewTrial(cfg)
	if err != nil {
		return config.ListenerConfig{}, nil, nil, nil, err
	}
	for _, l := range cfg.Intakes() {
		if o.listener == "" || l.Name == o.listener {
			profile, err := cfg.LoadProfile(l.Profile)
			return l, trial.Routed(l.Name), profile, cfg.SiteRules(l.Name), err
		}
	}
	return config.ListenerConfig{}, nil, nil, nil, fmt.Errorf("%s has no listener or source named %q", o.config, o.listener)
}
