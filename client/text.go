package client

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/alerts"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/wire"
)

// The API's answers as text, one function per answer: the tables and
// pages the CLI prints (and a Go program using this client can print the
// same). Messages' contents appear only in the answers that carry them
// (a message or a dead letter shown), which the server audits.

// Table writes rows under a header, columns aligned.
func Table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// When is a time in this machine's zone to the second, or "-" for none.
func When(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// PrintJSON writes raw JSON indented (as it came if it is not JSON).
func PrintJSON(w io.Writer, raw []byte) {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

// WriteOutcome writes a bulk operation's items and totals.
func WriteOutcome(w io.Writer, out history.Outcome, verb string) {
	var rows [][]string
	for _, it := range out.Items {
		rows = append(rows, []string{it.ID, it.Result, it.NewID})
	}
	Table(w, "ID\tRESULT\tNEW ID", rows)
	fmt.Fprintf(w, "%s %d, failed %d\n", verb, out.Done, out.Failed)
}

// WriteMessages writes a page of search results: no content but the
// search keys' values (a column each).
func WriteMessages(w io.Writer, page history.Page) {
	names := map[string]bool{}
	for _, s := range page.Items {
		for k := range s.Keys {
			names[k] = true
		}
	}
	keys := slices.Sorted(maps.Keys(names))
	var rows [][]string
	for _, s := range page.Items {
		st := s.Status
		if s.Destination != nil {
			st = s.Destination.Status + " (" + s.Destination.Destination + ")"
		}
		row := []string{s.ID, When(s.ReceivedAt), s.Listener, s.Type + "^" + s.Event, s.ControlID}
		for _, k := range keys {
			row = append(row, cmp.Or(s.Keys[k], "-"))
		}
		rows = append(rows, append(row, st, s.LastError))
	}
	header := "ID\tRECEIVED\tLISTENER\tTYPE\tCONTROL ID\t"
	for _, k := range keys {
		header += strings.ToUpper(k) + "\t"
	}
	Table(w, header+"STATUS\tLAST ERROR", rows)
	nextCursor(w, page.NextCursor)
}

func nextCursor(w io.Writer, cursor string) {
	if cursor != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", cursor)
	}
}

// segmentLines is an HL7 message one segment a line.
func segmentLines(msg string) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(strings.TrimRight(msg, "\r\n"))
}

// WriteMessage writes a message as received, its copies and its journey.
func WriteMessage(w io.Writer, v history.View) {
	fmt.Fprintf(w, "message %s  %s^%s  control ID %s  from %s (%s)  received %s  status %s\n",
		v.ID, v.Type, v.Event, v.ControlID, v.Listener, v.RemoteAddr, When(v.ReceivedAt), v.Status)
	if v.ReplayOf != "" {
		fmt.Fprintf(w, "replay of %s\n", v.ReplayOf)
	}
	fmt.Fprintf(w, "\n%s\n\n", segmentLines(v.Message))
	var rows [][]string
	for _, cp := range v.Copies {
		rows = append(rows, []string{cp.Destination, cp.Status, strconv.Itoa(cp.Attempts), cp.Code, cp.Reason})
	}
	Table(w, "DESTINATION\tSTATUS\tATTEMPTS\tLAST ANSWER\tREASON", rows)
	for _, cp := range v.Copies {
		writeSent(w, cp, v.Message)
	}
	fmt.Fprintln(w, "\njourney:")
	for _, raw := range v.Journey {
		var e wire.Event
		_ = json.Unmarshal(raw, &e)
		fmt.Fprintf(w, "  %s  %s\n", When(e.At), e.Describe())
	}
}

// WriteProblems writes what validation found, a line each.
func WriteProblems(w io.Writer, problems []spec.Problem) {
	for _, p := range problems {
		fmt.Fprintf(w, "invalid: %s (HL7 0357 code %d): %s\n", p.Location, p.Code, p.Reason)
	}
}

// writeSent writes what a copy's latest attempt sent, when it is not the
// message as received, and what the downstream answered.
func writeSent(w io.Writer, cp history.CopyContent, message string) {
	if cp.SentName != "" {
		fmt.Fprintf(w, "\n%s: written to %s\n", cp.Destination, cp.SentName)
	}
	block := func(what, text, encoding string) {
		if text == "" {
			return
		}
		if encoding != "" {
			what += " (" + encoding + ")"
		}
		fmt.Fprintf(w, "\n%s %s:\n%s\n", cp.Destination, what, indent(segmentLines(text)))
	}
	if cp.Sent != message {
		what := "sent"
		if cp.SentSize > 0 {
			what = fmt.Sprintf("sent (the first %d of %d bytes)", len(cp.Sent), cp.SentSize)
		}
		block(what, cp.Sent, cp.SentEncoding)
	}
	block("answered", cp.Response, cp.ResponseEncoding)
}

// indent puts two spaces before each line of s.
func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// WriteDeadLetters writes a page of dead letters with their reasons.
func WriteDeadLetters(w io.Writer, page history.DLQPage) {
	var rows [][]string
	for _, d := range page.Items {
		rows = append(rows, []string{d.ID, d.MessageID, When(d.At), d.Destination, d.Type + "^" + d.Event, d.ControlID, strconv.Itoa(d.Attempts), d.Reason})
	}
	Table(w, "ID\tMESSAGE\tAT\tDESTINATION\tTYPE\tCONTROL ID\tATTEMPTS\tREASON", rows)
}

// WriteDeadLetter writes one dead letter with its content.
func WriteDeadLetter(w io.Writer, d history.DeadLetter, message string) {
	fmt.Fprintf(w, "dead letter %s of message %s  destination %s  %s^%s  control ID %s  at %s  attempts %d\nreason: %s\n\n%s\n",
		d.ID, d.MessageID, d.Destination, d.Type, d.Event, d.ControlID, When(d.At), d.Attempts, d.Reason, segmentLines(message))
}

// WriteDestinations writes destinations with their queues.
func WriteDestinations(w io.Writer, ds []admin.DestinationStatus) {
	var rows [][]string
	for _, d := range ds {
		oldest := "-"
		if d.OldestUndeliveredSeconds > 0 {
			oldest = (time.Duration(d.OldestUndeliveredSeconds) * time.Second).String()
		}
		rows = append(rows, []string{d.Name, d.Type, strconv.FormatBool(d.Paused), strconv.FormatInt(d.QueueDepth, 10), oldest,
			strconv.FormatUint(d.Delivered, 10), strconv.FormatUint(d.Failures, 10), strconv.FormatUint(d.DeadLetter, 10), d.LastError})
	}
	Table(w, "NAME\tTYPE\tPAUSED\tQUEUED\tOLDEST\tDELIVERED\tFAILURES\tDEAD LETTERS\tLAST ERROR", rows)
}

// WriteAudit writes a page of the audit trail.
func WriteAudit(w io.Writer, page history.AuditPage) {
	var rows [][]string
	for _, a := range page.Items {
		var keys []string
		for _, name := range slices.Sorted(maps.Keys(a.Keys)) {
			keys = append(keys, name+"="+strings.Join(a.Keys[name], "|"))
		}
		rows = append(rows, []string{When(a.At), a.User, a.Action, a.Result, strings.Join(a.IDs, ","), cmp.Or(strings.Join(keys, " "), "-"), a.Detail})
	}
	Table(w, "AT\tUSER\tACTION\tRESULT\tIDS\tKEYS\tDETAIL", rows)
}

// WriteRefused writes a page of messages refused (header and reason).
func WriteRefused(w io.Writer, page history.RefusedPage) {
	var rows [][]string
	for _, r := range page.Items {
		typ := ""
		if r.Type != "" {
			typ = r.Type + "^" + r.Event
		}
		rows = append(rows, []string{When(r.At), r.Listener, r.Remote, typ, r.ControlID, r.Ack, r.Code, r.Reason})
	}
	Table(w, "AT\tLISTENER\tFROM\tTYPE\tCONTROL ID\tACK\tCODE\tREASON", rows)
	nextCursor(w, page.NextCursor)
}

// WriteStatus writes listeners, routes, destinations and storage.
func WriteStatus(w io.Writer, st admin.Status) {
	var rows [][]string
	for _, l := range st.Listeners {
		rows = append(rows, []string{l.Name, l.Addr, strconv.Itoa(l.Connections), strconv.FormatUint(l.Received, 10), strconv.FormatUint(l.Rejected, 10), fmt.Sprintf("%.1f", l.Rate)})
	}
	Table(w, "LISTENER\tADDR\tCONNECTIONS\tRECEIVED\tREJECTED\tMSG/S", rows)
	rows = nil
	for _, r := range st.Routes {
		rows = append(rows, []string{r.Name, strings.Join(r.To, ","), strconv.FormatUint(r.Matches, 10)})
	}
	fmt.Fprintln(w)
	Table(w, "ROUTE\tTO\tMATCHES", rows)
	fmt.Fprintln(w)
	WriteDestinations(w, st.Destinations)
	storage := "ok"
	if !st.Storage.OK {
		storage = st.Storage.Problem
	}
	fmt.Fprintf(w, "\nstorage: %s (durability %s); NATS %s, replicas %d\n", storage, st.Storage.Durability, st.Cluster.Mode, st.Cluster.Replicas)
	if st.Version != "" {
		fmt.Fprintf(w, "hl7broker %s\n", st.Version)
	}
}

// Alerts is GET /api/v1/alerts's answer.
type Alerts struct {
	Items, Pending []alerts.Alert
	Rules          []struct {
		Name, Kind, Target, Severity string
		Silenced                     *alerts.Silence
	}
}

// WriteAlerts writes alerts firing, pending and resolved, and the rules
// silenced.
func WriteAlerts(w io.Writer, page Alerts) {
	var rows [][]string
	for _, a := range append(page.Items, page.Pending...) {
		rows = append(rows, []string{a.Rule, a.Status, cmp.Or(a.Target, "-"), a.Severity, When(a.Since), a.Detail})
	}
	Table(w, "RULE\tSTATUS\tTARGET\tSEVERITY\tSINCE\tDETAIL", rows)
	for _, r := range page.Rules {
		if s := r.Silenced; s != nil {
			fmt.Fprintf(w, "%s is silenced until %s by %s: %s\n", r.Name, When(s.Until), s.By, s.Reason)
		}
	}
}
