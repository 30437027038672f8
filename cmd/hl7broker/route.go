package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hl7broker/hl7broker/broker"
	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/script"
	"github.com/spf13/cobra"
)

func newRouteCmd() *cobra.Command {
	route := &cobra.Command{Use: "route", Short: "Try routes without running the broker"}
	route.AddCommand(newRouteTestCmd())
	return route
}

type routeTestOptions struct {
	config, listener, out string
}

func newRouteTestCmd() *cobra.Command {
	var o routeTestOptions
	cmd := &cobra.Command{
		Use:   "test --config FILE MESSAGE_FILE...",
		Short: "Show which routes match each message, why, and what each destination would receive",
		Long: `Route test runs each message (a file may hold several, or a batch) through
the configuration's routes as the broker would, and sends nothing: for each
route whether it matches and the condition that decided, then each copy a
destination would receive, its segments one a line. With --out DIR each
copy is also written to DIR byte for byte. A message comes from --listener,
or else from the first listener that accepts its type.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runRouteTest(cmd, args, o) },
	}
	cmd.Flags().StringVar(&o.config, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&o.listener, "listener", "", "the listener the messages come from")
	cmd.Flags().StringVar(&o.out, "out", "", "write each copy to this folder, exactly as it would be sent")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runRouteTest(cmd *cobra.Command, args []string, o routeTestOptions) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		printConfigError(cmd.OutOrStdout(), o.config, err)
		return exitError{1}
	}
	trial, err := broker.NewTrial(cfg)
	if err != nil {
		fmt.Fprintln(cmd.OutOrStdout(), err)
		return exitError{1}
	}
	if o.listener != "" && !slices.Contains(cfg.Origins(), o.listener) {
		fmt.Fprintf(cmd.OutOrStdout(), "no listener or source is named %q\n", o.listener)
		return exitError{1}
	}
	msgs, failures := readMessages(cmd, args)
	w := cmd.OutOrStdout()
	for _, msg := range msgs {
		fmt.Fprintf(w, "== %s #%d\n", msg.File, msg.Index)
		r := trial.Run(o.listener, msg.Raw)
		switch {
		case r.Refused != "" && r.Type == "":
			fmt.Fprintf(w, "not accepted: %s\n\n", r.Refused)
			continue
		case r.Refused != "":
			fmt.Fprintf(w, "%s^%s, control ID %s: not accepted: %s\n", r.Type, r.Trigger, r.ControlID, r.Refused)
			client.WriteProblems(w, r.Problems)
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "%s^%s, control ID %s, from listener %s\n", r.Type, r.Trigger, r.ControlID, r.Listener)
		client.WriteProblems(w, r.Problems)
		for _, d := range r.Decisions {
			fmt.Fprintf(w, "route %s: %s: %s\n", d.Route, map[bool]string{true: "match", false: "no match"}[d.Matched], d.Why)
		}
		for _, l := range r.Log {
			fmt.Fprintf(w, "log (%s) %s: %s\n", l.Script, l.Level, l.Text)
		}
		for _, d := range r.DeadLetters {
			fmt.Fprintf(w, "dead letter: %s\n", d.Reason)
			printThrown(w, d.Err)
		}
		if r.Unrouted {
			fmt.Fprintf(w, "unrouted: no route matched%s\n", map[bool]string{true: "; sent to " + cfg.Unrouted.To, false: "; kept in history only"}[cfg.Unrouted.To != ""])
		}
		for _, c := range r.Sent {
			if c.Err != nil {
				fmt.Fprintf(w, "-> %s (route %s): cannot be encoded for it: %v\n", c.Destination, c.Route, c.Err)
				printThrown(w, c.Err)
				failures++
				continue
			}
			printCopy(w, c.Copy, c.Sent, c.Ext, msg.Raw)
			if o.out != "" {
				name := filepath.Join(o.out, fmt.Sprintf("%s-%d-%s.%s", strings.TrimSuffix(filepath.Base(msg.File), filepath.Ext(msg.File)), msg.Index, c.Destination, c.Ext))
				if err := os.MkdirAll(o.out, 0o755); err == nil {
					err = os.WriteFile(name, c.Sent, 0o644)
				}
				if err != nil {
					fmt.Fprintf(w, "   could not write %s: %v\n", name, err)
					failures++
				}
			}
		}
		fmt.Fprintln(w)
	}
	if failures > 0 {
		return exitError{1}
	}
	return nil
}

// printThrown prints what a script threw (which may quote the message: a
// person running route test sees the message anyway).
func printThrown(w io.Writer, err error) {
	var se *script.Error
	if errors.As(err, &se) && se.Detail != "" {
		fmt.Fprintf(w, "   thrown: %s\n", se.Detail)
	}
}

// printCopy prints one copy as sent: JSON as it is, ER7 one segment a
// line; and the variables its route's scripts set.
func printCopy(w io.Writer, c routing.Copy, sent []byte, ext string, original []byte) {
	same := ""
	if bytes.Equal(sent, original) {
		same = ", unchanged"
	}
	fmt.Fprintf(w, "-> %s (route %s, %d bytes%s)\n", c.Destination, c.Route, len(sent), same)
	for _, k := range slices.Sorted(maps.Keys(c.Vars)) {
		fmt.Fprintf(w, "   var %s = %q\n", k, c.Vars[k])
	}
	if ext == "json" { // indented to be read (a FHIR Bundle is long); --out writes it as sent
		var out bytes.Buffer
		if json.Indent(&out, sent, "   ", "  ") != nil {
			out.Reset()
			out.Write(sent)
		}
		fmt.Fprintf(w, "   %s\n", out.Bytes())
		return
	}
	for _, seg := range strings.FieldsFunc(string(sent), func(r rune) bool { return r == '\r' || r == '\n' }) {
		fmt.Fprintf(w, "   %s\n", seg)
	}
}

// printConfigError prints a config's problems as check does.
func printConfigError(w io.Writer, file string, err error) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintf(w, "%s: %d problem(s)\n", file, len(ce.Problems))
	for _, p := range ce.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
