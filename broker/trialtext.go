package broker

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

	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/script"
)

// Report is how `route test` writes trials: to W, and each copy also to
// a file in Out when it is set.
type Report struct {
	W        io.Writer
	Out      string // a folder; "" writes no files
	Listener string // where the messages come from; "" the first that accepts each
}

// Write tries raw (message index of file) and writes the verdicts: for
// each route whether it matches and why, the scripts' log lines and dead
// letters, then each copy as its destination would receive it, segments
// one a line. It returns how many copies failed (not encodable, or not
// written to Out).
func (t *Trial) Write(rep Report, file string, index int, raw []byte) (failures int) {
	w := rep.W
	fmt.Fprintf(w, "== %s #%d\n", file, index)
	defer fmt.Fprintln(w)
	r := t.Run(rep.Listener, raw)
	switch {
	case r.Refused != "" && r.Type == "":
		fmt.Fprintf(w, "not accepted: %s\n", r.Refused)
		return 0
	case r.Refused != "":
		fmt.Fprintf(w, "%s^%s, control ID %s: not accepted: %s\n", r.Type, r.Trigger, r.ControlID, r.Refused)
		client.WriteProblems(w, r.Problems)
		return 0
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
		writeThrown(w, d.Err)
	}
	if to := t.cfg.Unrouted.To; r.Unrouted && to != "" {
		fmt.Fprintf(w, "unrouted: no route matched; sent to %s\n", to)
	} else if r.Unrouted {
		fmt.Fprintln(w, "unrouted: no route matched; kept in history only")
	}
	for _, c := range r.Sent {
		if c.Err != nil {
			fmt.Fprintf(w, "-> %s (route %s): cannot be encoded for it: %v\n", c.Destination, c.Route, c.Err)
			writeThrown(w, c.Err)
			failures++
			continue
		}
		writeCopy(w, c, raw)
		if rep.Out == "" {
			continue
		}
		name := filepath.Join(rep.Out, fmt.Sprintf("%s-%d-%s.%s", strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), index, c.Destination, c.Ext))
		err := os.MkdirAll(rep.Out, 0o755)
		if err == nil {
			err = os.WriteFile(name, c.Sent, 0o644)
		}
		if err != nil {
			fmt.Fprintf(w, "   could not write %s: %v\n", name, err)
			failures++
		}
	}
	return failures
}

// writeThrown writes what a script threw (which may quote the message: a
// person running route test sees the message anyway).
func writeThrown(w io.Writer, err error) {
	var se *script.Error
	if errors.As(err, &se) && se.Detail != "" {
		fmt.Fprintf(w, "   thrown: %s\n", se.Detail)
	}
}

// writeCopy writes one copy as sent (JSON indented to be read, ER7 one
// segment a line) and the variables its route's scripts set.
func writeCopy(w io.Writer, c TrialCopy, original []byte) {
	same := ""
	if bytes.Equal(c.Sent, original) {
		same = ", unchanged"
	}
	fmt.Fprintf(w, "-> %s (route %s, %d bytes%s)\n", c.Destination, c.Route, len(c.Sent), same)
	for _, k := range slices.Sorted(maps.Keys(c.Vars)) {
		fmt.Fprintf(w, "   var %s = %q\n", k, c.Vars[k])
	}
	if c.Ext == "json" {
		var out bytes.Buffer
		if json.Indent(&out, c.Sent, "   ", "  ") != nil {
			out.Reset()
			out.Write(c.Sent)
		}
		fmt.Fprintf(w, "   %s\n", out.Bytes())
		return
	}
	for _, seg := range strings.FieldsFunc(string(c.Sent), func(r rune) bool { return r == '\r' || r == '\n' }) {
		fmt.Fprintf(w, "   %s\n", seg)
	}
}
