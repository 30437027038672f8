package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/feed"
	"github.com/spf13/cobra"
)

type importOptions struct {
	validateOnly bool
	to           string
	tls          feed.ClientTLS
	rate         float64
	report       string
	demographics string
	config       string
	listener     string
	state        string
	timeout      time.Duration
	progress     time.Duration
	batch        int
	tokenFile    string
	reconcile    feed.ReconcileFlags
}

func newImportCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import PATH... (--validate-only | --to HOST:PORT | --to URL) [flags]",
		Short: "Validate HL7 files for a migration, and feed them to a running broker",
		Long:  help("import"),
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runImport(cmd, args, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.validateOnly, "validate-only", false, "check and report; send nothing")
	f.StringVar(&o.to, "to", "", "what to feed: a broker's MLLP listener (HOST:PORT) or HTTP source (URL)")
	f.IntVar(&o.batch, "batch", 100, "messages per request to an HTTP source")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the HTTP source's bearer token")
	o.tls.Register(f)
	f.Float64Var(&o.rate, "rate", 0, "messages per second at most (0: as fast as ACKs come back)")
	f.StringVar(&o.report, "report", "", "write the problems to FILE.csv or FILE.json")
	f.StringVar(&o.demographics, "demographics", "", "write the demographics conflicts with their values (patient data) to FILE.csv")
	f.StringVar(&o.config, "config", "", "a broker config whose listener or source sets the checks")
	f.StringVar(&o.listener, "listener", "", "the listener or source (of --config) the messages will arrive at")
	f.StringVar(&o.state, "state", "hl7broker-import.state", "where progress is kept, to resume an interrupted import")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	f.DurationVar(&o.progress, "progress", time.Second, "a progress line this often on stderr (0: none)")
	o.reconcile.Register(f)
	return cmd
}

func runImport(cmd *cobra.Command, args []string, o importOptions) error {
	if n := len(slices.DeleteFunc([]bool{o.validateOnly, o.to != "", o.reconcile.Only}, func(b bool) bool { return !b })); n != 1 {
		return errors.New("give --validate-only, --to HOST:PORT or URL, or --reconcile (one of them)")
	}
	var cfg *config.Config
	var err error
	if o.config == "" && o.listener != "" {
		return errors.New("--listener needs --config")
	} else if o.config != "" && func() error { cfg, err = config.Load(o.config); return err }() != nil {
		return err
	}
	sv, err := broker.Surveyor(cfg, o.listener)
	if err != nil {
		return fmt.Errorf("%s: %w", o.config, err)
	}
	files, total, err := feed.Files(args)
	if err != nil {
		return err
	}
	var snd *feed.Sender
	if o.to != "" {
		if snd, err = newFeed(o); err != nil {
			return err
		}
		defer snd.Close()
	}
	imp := &feed.Import{Survey: sv, Sender: snd, Progress: feed.NewProgress(cmd.ErrOrStderr(), o.progress, total), Out: cmd.OutOrStdout(),
		Report: o.report, Demographics: o.demographics, Reconciliation: o.reconcile.File}
	if imp.Reconcile, err = o.reconcile.Reconciler(cmd.ErrOrStderr()); err != nil {
		return err
	}
	if ok, err := imp.Run(cmd.Context(), files); !ok {
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "hl7broker import:", err)
		}
		return exitError{1}
	}
	return nil
}

// newFeed is the sender --to, --tls, --token-file and the rest ask for.
func newFeed(o importOptions) (*feed.Sender, error) {
	tc, err := o.tls.Config()
	if err != nil {
		return nil, err
	}
	return feed.NewSender(feed.Options{To: o.to, TLS: tc, Batch: o.batch, Rate: o.rate, Timeout: o.timeout, StatePath: o.state, TokenFile: o.tokenFile})
}
