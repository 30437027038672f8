package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/fhir"
	"github.com/hl7broker/hl7broker/hl7"
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
		Long: `Convert reads each file (or - for stdin; a file may hold several messages,
or a batch) and writes each message's FHIR R4 Bundle as JSON on stdout, one
Bundle a line. A message that cannot be converted (not HL7, or a type with
no FHIR mapping) is named on stderr with the reason, and the exit code is 1;
the others are still converted.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runConvert(cmd, args, o) },
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
	if o.to != "fhir" {
		fmt.Fprintf(errw, "--to %q: only fhir is known\n", o.to)
		return exitError{2}
	}
	if o.bundle != "transaction" && o.bundle != "collection" {
		fmt.Fprintf(errw, "--bundle %q: transaction or collection\n", o.bundle)
		return exitError{2}
	}
	opts := fhir.Options{Bundle: o.bundle, Charset: o.charset}
	if o.timeZone != "" {
		loc, err := time.LoadLocation(o.timeZone)
		if err != nil {
			fmt.Fprintf(errw, "--time-zone %q: %v\n", o.timeZone, err)
			return exitError{2}
		}
		opts.TimeZone = loc
	}
	if o.charset != "" {
		if _, err := hl7.LookupCharset(o.charset); err != nil {
			fmt.Fprintf(errw, "--charset: %v\n", err)
			return exitError{2}
		}
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	failures := 0
	msgs := feed.ReadMessages(args, cmd.InOrStdin(), func(name string, err error) {
		fmt.Fprintf(errw, "%s: %s\n", name, feed.OneLine(err.Error()))
		failures++
	}, func(string, string) {})
	for _, m := range msgs {
		bundle, err := fhir.ConvertBytes(m.Raw, opts)
		if err != nil {
			fmt.Fprintf(errw, "%s #%d: not converted: %s\n", m.File, m.Index, feed.OneLine(err.Error()))
			failures++
			continue
		}
		if o.pretty {
			var ind bytes.Buffer
			_ = json.Indent(&ind, bundle, "", "  ")
			bundle = ind.Bytes()
		}
		out.Write(bundle)
		out.WriteByte('\n')
	}
	if failures > 0 {
		return exitError{1}
	}
	return nil
}
