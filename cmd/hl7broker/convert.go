package main

import (
	"fmt"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/fhir"
	"github.com/spf13/cobra"
)

type convertOptions struct {
	to, bundle, timeZone, charset string
	pretty                        bool
}

func newConvertCmd() *cobra.Command {
	var o convertOptions
	cmd := &cobra.Command{
		Use:   "convert FILE... --to fhir",
		Short: "Convert HL7 v2 files to FHIR R4 Bundles, without a broker",
		Long:  help("convert"),
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runConvert(cmd, args, o) },
	}
	cmd.Flags().StringVar(&o.to, "to", "", "what to convert to: fhir (required)")
	cmd.Flags().StringVar(&o.bundle, "bundle", "transaction", "Bundle type: transaction (PUT entries, for a FHIR server) or collection")
	cmd.Flags().StringVar(&o.timeZone, "time-zone", "", "zone of HL7 times that carry no offset, such as America/Chicago (default: this machine's)")
	cmd.Flags().StringVar(&o.charset, "charset", "", "charset of the files' text when MSH-18 does not say (8859/1, WINDOWS-1252, ...)")
	cmd.Flags().BoolVar(&o.pretty, "pretty", false, "indent each Bundle (then Bundles are not one a line)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func runConvert(cmd *cobra.Command, args []string, o convertOptions) error {
	errw := cmd.ErrOrStderr()
	opts, err := fhir.NewOptions(o.bundle, o.timeZone, o.charset)
	if o.to != "fhir" {
		err = fmt.Errorf("--to %q: only fhir is known", o.to)
	}
	if err != nil {
		fmt.Fprintln(errw, "hl7broker convert:", err)
		return exitError{2}
	}
	failures := 0
	msgs := feed.ReadMessages(args, cmd.InOrStdin(), func(name string, err error) {
		fmt.Fprintf(errw, "%s: %s\n", name, feed.OneLine(err.Error()))
		failures++
	}, func(string, string) {})
	if failures+feed.Convert(cmd.OutOrStdout(), errw, msgs, opts, o.pretty) > 0 {
		return exitError{1}
	}
	return nil
}
