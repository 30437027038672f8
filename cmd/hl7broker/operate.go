package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/history"
	"github.com/spf13/cobra"
)

// The commands that operate a running broker through its admin API.

func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// getJSON fetches path and prints it raw with --json, else decodes it into out.
func getJSON(cmd *cobra.Command, c *apiClient, path string, q url.Values, out any) (printed bool, err error) {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), "GET", path, q, nil, &raw); err != nil {
		return false, err
	}
	if c.json {
		printJSON(cmd.OutOrStdout(), raw)
		return true, nil
	}
	return false, json.Unmarshal(raw, out)
}

// postJSON sends body, prints the outcome, and fails (exit 1) when some
// items failed.
func postOutcome(cmd *cobra.Command, c *apiClient, path string, body any, verb string) error {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), "POST", path, nil, body, &raw); err != nil {
		return err
	}
	var out history.Outcome
	_ = json.Unmarshal(raw, &out)
	if c.json {
		printJSON(cmd.OutOrStdout(), raw)
	} else {
		var rows [][]string
		for _, it := range out.Items {
			rows = append(rows, []string{it.ID, it.Result, it.NewID})
		}
		table(cmd.OutOrStdout(), "ID\tRESULT\tNEW ID", rows)
		fmt.Fprintf(cmd.OutOrStdout(), "%s %d, failed %d\n", verb, out.Done, out.Failed)
	}
	if out.Failed > 0 {
		return &cliError{exitFailed, fmt.Sprintf("%d of %d failed", out.Failed, out.Failed+out.Done)}
	}
	return nil
}

func parseIDs(args []string) ([]string, error) {
	for _, a := range args {
		if n, err := strconv.ParseUint(a, 10, 64); err != nil || n == 0 {
			return nil, usageError(fmt.Sprintf("%q is not an id", a))
		}
	}
	return args, nil
}

func newMessagesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "messages", Short: "Search, show and replay stored messages (a running broker's admin API)"}
	apiFlags(cmd)
	var f struct {
		controlID, typ, event, listener, status, dest, from, to, cursor string
		keys                                                            []string
		limit                                                           int
	}
	filter := func(c *cobra.Command, withDest bool) {
		c.Flags().StringVar(&f.controlID, "control-id", "", "MSH-10")
		c.Flags().StringArrayVar(&f.keys, "key", nil, "a search key, NAME=VALUE (history.search_keys), repeatable")
		c.Flags().StringVar(&f.typ, "type", "", "message type (MSH-9.1), e.g. ADT")
		c.Flags().StringVar(&f.event, "event", "", "trigger event (MSH-9.2), e.g. A01")
		c.Flags().StringVar(&f.listener, "listener", "", "listener name")
		c.Flags().StringVar(&f.status, "status", "", "status: "+strings.Join(history.Statuses, ", "))
		if withDest {
			c.Flags().StringVar(&f.dest, "destination", "", "messages with a copy for this destination (status then is that copy's)")
		}
		c.Flags().StringVar(&f.from, "from", "", "received at or after (RFC 3339 or a date)")
		c.Flags().StringVar(&f.to, "to", "", "received before (RFC 3339 or a date)")
		c.Flags().IntVar(&f.limit, "limit", 50, "at most this many")
	}
	query := func() (url.Values, error) {
		q := url.Values{}
		for k, v := range map[string]string{"control_id": f.controlID, "type": f.typ, "event": f.event, "listener": f.listener,
			"status": f.status, "destination": f.dest, "from": f.from, "to": f.to, "cursor": f.cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		for _, kv := range f.keys {
			name, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, usageError("--key takes NAME=VALUE")
			}
			q.Set("key."+name, v)
		}
		q.Set("limit", strconv.Itoa(f.limit))
		return q, nil
	}
	search := &cobra.Command{Use: "search", Short: "List messages (newest first): no content",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q, err := query()
			if err != nil {
				return err
			}
			var page history.Page
			if printed, err := getJSON(cmd, c, "/api/v1/messages", q, &page); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, s := range page.Items {
				st := s.Status
				if s.Destination != nil {
					st = s.Destination.Status + " (" + s.Destination.Destination + ")"
				}
				rows = append(rows, []string{s.ID, when(s.ReceivedAt), s.Listener, s.Type + "^" + s.Event, s.ControlID, st})
			}
			table(cmd.OutOrStdout(), "ID\tRECEIVED\tLISTENER\tTYPE\tCONTROL ID\tSTATUS", rows)
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		})}
	filter(search, true)
	search.Flags().StringVar(&f.cursor, "cursor", "", "the next page, as the last page said")

	show := &cobra.Command{Use: "show ID", Short: "Show a message as received, its copies and its journey (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			if _, err := parseIDs(args); err != nil {
				return err
			}
			var v history.View
			if printed, err := getJSON(cmd, c, "/api/v1/messages/"+args[0], nil, &v); err != nil || printed {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "message %s  %s^%s  control ID %s  from %s (%s)  received %s  status %s\n",
				v.ID, v.Type, v.Event, v.ControlID, v.Listener, v.RemoteAddr, when(v.ReceivedAt), v.Status)
			if v.ReplayOf != "" {
				fmt.Fprintf(w, "replay of %s\n", v.ReplayOf)
			}
			fmt.Fprintln(w, "\n"+strings.ReplaceAll(strings.TrimRight(v.Message, "\r\n"), "\r", "\n"))
			fmt.Fprintln(w)
			var rows [][]string
			for _, cp := range v.Copies {
				rows = append(rows, []string{cp.Destination, cp.Status, strconv.Itoa(cp.Attempts), cp.Code, cp.Reason})
			}
			table(w, "DESTINATION\tSTATUS\tATTEMPTS\tLAST ANSWER\tREASON", rows)
			fmt.Fprintln(w, "\njourney:")
			for _, e := range v.Journey {
				fmt.Fprintln(w, "  "+journeyLine(e))
			}
			return nil
		})}

	var replayDest string
	var replayFilter bool
	replay := &cobra.Command{Use: "replay [ID...]", Short: "Replay messages through today's routes, or resend one destination's copy (--destination)",
		Long: `Replay stores each message again as a new message, marked as a replay of the
original, and routes it by today's routes; with --destination it resends only
that destination's copy as it was sent. Give ids, or --filter with the search
flags to replay what they select (up to --limit).`,
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			body := map[string]any{"destination": replayDest}
			switch {
			case len(args) > 0 && replayFilter:
				return usageError("give ids or --filter, not both")
			case len(args) > 0:
				if _, err := parseIDs(args); err != nil {
					return err
				}
				body["ids"] = args
			case replayFilter:
				q, err := query()
				if err != nil {
					return err
				}
				m := map[string]string{}
				for k := range q {
					if k != "limit" {
						m[k] = q.Get(k)
					}
				}
				body["filter"], body["limit"] = m, f.limit
			default:
				return usageError("give message ids, or --filter with search flags")
			}
			return postOutcome(cmd, c, "/api/v1/messages/replay", body, "replayed")
		})}
	filter(replay, false)
	replay.Flags().StringVar(&replayDest, "destination", "", "resend this destination's copy as it was sent (default: reprocess through today's routes)")
	replay.Flags().BoolVar(&replayFilter, "filter", false, "replay what the search flags select")
	cmd.AddCommand(search, show, replay, newRefusedCmd())
	return cmd
}

// journeyLine is one journey event in words.
func journeyLine(raw json.RawMessage) string {
	var e struct {
		Kind, Listener, Remote, Ack, Destination, Outcome, Code, Reason, By string
		At                                                                  time.Time
		Duplicate, Unrouted                                                 bool
		Destinations, Routes                                                []string
		Attempt                                                             int
		Ms                                                                  float64 `json:"ms"`
		DLQ, As                                                             uint64
	}
	_ = json.Unmarshal(raw, &e)
	s := when(e.At) + "  " + e.Kind
	switch e.Kind {
	case "received":
		if e.By != "" {
			s += " as a replay by " + e.By
		} else {
			s += fmt.Sprintf(" on %s from %s, answered %s", e.Listener, e.Remote, e.Ack)
		}
		if e.Duplicate {
			s += " (a resend: stored once)"
		}
	case "routed":
		if len(e.Destinations) == 0 {
			s += " nowhere"
		} else {
			s += " to " + strings.Join(e.Destinations, ", ")
		}
		if len(e.Routes) > 0 {
			s += " by " + strings.Join(e.Routes, ", ")
		}
		if e.Unrouted {
			s += " (no route matched)"
		}
	case "attempt", "delivered":
		s += fmt.Sprintf(" %s attempt %d: %s %s (%.1f ms) %s", e.Destination, e.Attempt, e.Outcome, e.Code, e.Ms, e.Reason)
	case "dead_lettered":
		s += fmt.Sprintf(" %s after %d attempts: %s (dead letter %d)", e.Destination, e.Attempt, e.Reason, e.DLQ)
	case "replayed":
		s += " by " + e.By
		if e.Destination != "" {
			s += " to " + e.Destination
		}
		if e.As != 0 {
			s += fmt.Sprintf(" as message %d", e.As)
		}
		if e.DLQ != 0 {
			s += fmt.Sprintf(" from dead letter %d", e.DLQ)
		}
	case "purged":
		s += fmt.Sprintf(" dead letter %d of %s by %s", e.DLQ, e.Destination, e.By)
	}
	return strings.TrimSpace(s)
}

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List, show, replay and purge dead letters (a running broker's admin API)"}
	apiFlags(cmd)
	var dest, to string
	var all bool
	var limit int
	list := &cobra.Command{Use: "list", Short: "List dead letters with their reasons (newest first)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if dest != "" {
				q.Set("destination", dest)
			}
			var page history.DLQPage
			if printed, err := getJSON(cmd, c, "/api/v1/dlq", q, &page); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, d := range page.Items {
				rows = append(rows, []string{d.ID, d.MessageID, when(d.At), d.Destination, d.Type + "^" + d.Event, d.ControlID, strconv.Itoa(d.Attempts), d.Reason})
			}
			table(cmd.OutOrStdout(), "ID\tMESSAGE\tAT\tDESTINATION\tTYPE\tCONTROL ID\tATTEMPTS\tREASON", rows)
			return nil
		})}
	list.Flags().StringVar(&dest, "destination", "", "only this destination's")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many")
	show := &cobra.Command{Use: "show ID", Short: "Show a dead letter with its content (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			if _, err := parseIDs(args); err != nil {
				return err
			}
			var d struct {
				history.DeadLetter
				Message string `json:"message"`
			}
			if printed, err := getJSON(cmd, c, "/api/v1/dlq/"+args[0], nil, &d); err != nil || printed {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "dead letter %s of message %s  destination %s  %s^%s  control ID %s  at %s  attempts %d\nreason: %s\n\n%s\n",
				d.ID, d.MessageID, d.Destination, d.Type, d.Event, d.ControlID, when(d.At), d.Attempts, d.Reason,
				strings.ReplaceAll(strings.TrimRight(d.Message, "\r\n"), "\r", "\n"))
			return nil
		})}
	body := func(args []string) (map[string]any, error) {
		switch {
		case len(args) > 0 && all:
			return nil, usageError("give ids or --all, not both")
		case len(args) > 0:
			if _, err := parseIDs(args); err != nil {
				return nil, err
			}
			return map[string]any{"ids": args}, nil
		case all:
			return map[string]any{"all": true, "destination": dest, "limit": limit}, nil
		}
		return nil, usageError("give dead-letter ids, or --all (with --destination to take one destination's)")
	}
	replay := &cobra.Command{Use: "replay [ID...]", Short: "Send dead letters again (to their destination, or --to another)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			b, err := body(args)
			if err != nil {
				return err
			}
			if to != "" {
				b["to"] = to
			}
			return postOutcome(cmd, c, "/api/v1/dlq/replay", b, "replayed")
		})}
	purge := &cobra.Command{Use: "purge [ID...]", Short: "Delete dead letters for good (admin role)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			b, err := body(args)
			if err != nil {
				return err
			}
			return postOutcome(cmd, c, "/api/v1/dlq/purge", b, "purged")
		})}
	for _, c := range []*cobra.Command{replay, purge} {
		c.Flags().BoolVar(&all, "all", false, "every dead letter (of --destination)")
		c.Flags().StringVar(&dest, "destination", "", "with --all: only this destination's")
		c.Flags().IntVar(&limit, "limit", 10000, "with --all: at most this many")
	}
	replay.Flags().StringVar(&to, "to", "", "send them to this destination instead")
	cmd.AddCommand(list, show, replay, purge)
	return cmd
}

func newDestinationsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "destinations", Short: "List, pause and resume destinations (a running broker's admin API)"}
	apiFlags(cmd)
	list := &cobra.Command{Use: "list", Short: "Destinations with their queues",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			var out struct {
				Items []admin.DestinationStatus `json:"items"`
			}
			if printed, err := getJSON(cmd, c, "/api/v1/destinations", nil, &out); err != nil || printed {
				return err
			}
			table(cmd.OutOrStdout(), "NAME\tTYPE\tPAUSED\tQUEUED\tOLDEST\tDELIVERED\tFAILURES\tDEAD LETTERS\tLAST ERROR", destinationRows(out.Items))
			return nil
		})}
	setPaused := func(verb string) *cobra.Command {
		return &cobra.Command{Use: verb + " NAME", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a destination", Args: cobra.ExactArgs(1),
			RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "POST", "/api/v1/destinations/"+url.PathEscape(args[0])+"/"+verb, nil, nil, &raw); err != nil {
					return err
				}
				if c.json {
					printJSON(cmd.OutOrStdout(), raw)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %sd\n", args[0], verb)
				}
				return nil
			})}
	}
	cmd.AddCommand(list, setPaused("pause"), setPaused("resume"))
	return cmd
}

func destinationRows(ds []admin.DestinationStatus) [][]string {
	var rows [][]string
	for _, d := range ds {
		oldest := "-"
		if d.OldestUndeliveredSeconds > 0 {
			oldest = (time.Duration(d.OldestUndeliveredSeconds) * time.Second).String()
		}
		rows = append(rows, []string{d.Name, d.Type, strconv.FormatBool(d.Paused), strconv.FormatInt(d.QueueDepth, 10), oldest,
			strconv.FormatUint(d.Delivered, 10), strconv.FormatUint(d.Failures, 10), strconv.FormatUint(d.DeadLetter, 10), d.LastError})
	}
	return rows
}

func newAuditCmd() *cobra.Command {
	var from, to, user, action string
	var limit int
	cmd := &cobra.Command{Use: "audit", Short: "The audit trail: who viewed or changed what (a running broker's admin API)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			for k, v := range map[string]string{"from": from, "to": to, "user": user, "action": action} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var page history.AuditPage
			if printed, err := getJSON(cmd, c, "/api/v1/audit", q, &page); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, a := range page.Items {
				rows = append(rows, []string{when(a.At), a.User, a.Action, a.Result, strings.Join(a.IDs, ","), a.Detail})
			}
			table(cmd.OutOrStdout(), "AT\tUSER\tACTION\tRESULT\tIDS\tDETAIL", rows)
			return nil
		})}
	apiFlags(cmd)
	cmd.Flags().StringVar(&from, "from", "", "at or after (RFC 3339 or a date)")
	cmd.Flags().StringVar(&to, "to", "", "before (RFC 3339 or a date)")
	cmd.Flags().StringVar(&user, "user", "", "the token's name")
	cmd.Flags().StringVar(&action, "action", "", "e.g. message.view, dlq.replay, destination.pause")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return cmd
}

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Listeners, routes, destinations and storage of a running broker",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			var st admin.Status
			if printed, err := getJSON(cmd, c, "/api/v1/status", nil, &st); err != nil || printed {
				return err
			}
			w := cmd.OutOrStdout()
			var rows [][]string
			for _, l := range st.Listeners {
				rows = append(rows, []string{l.Name, l.Addr, strconv.Itoa(l.Connections), strconv.FormatUint(l.Received, 10), strconv.FormatUint(l.Rejected, 10), fmt.Sprintf("%.1f", l.Rate)})
			}
			table(w, "LISTENER\tADDR\tCONNECTIONS\tRECEIVED\tREJECTED\tMSG/S", rows)
			rows = nil
			for _, r := range st.Routes {
				rows = append(rows, []string{r.Name, strings.Join(r.To, ","), strconv.FormatUint(r.Matches, 10)})
			}
			fmt.Fprintln(w)
			table(w, "ROUTE\tTO\tMATCHES", rows)
			fmt.Fprintln(w)
			table(w, "DESTINATION\tTYPE\tPAUSED\tQUEUED\tOLDEST\tDELIVERED\tFAILURES\tDEAD LETTERS\tLAST ERROR", destinationRows(st.Destinations))
			storage := "ok"
			if !st.Storage.OK {
				storage = st.Storage.Problem
			}
			fmt.Fprintf(w, "\nstorage: %s (durability %s); NATS %s, replicas %d\n", storage, st.Storage.Durability, st.Cluster.Mode, st.Cluster.Replicas)
			return nil
		})}
	apiFlags(cmd)
	return cmd
}

// newRefusedCmd is "messages refused": what ingest did not store.
func newRefusedCmd() *cobra.Command {
	var listener, controlID, from, to, cursor string
	var limit int
	c := &cobra.Command{Use: "refused", Short: "List messages the broker refused (AR/AE to their sender): header and reason, no content",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			for k, v := range map[string]string{"listener": listener, "control_id": controlID, "from": from, "to": to, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var page history.RefusedPage
			if printed, err := getJSON(cmd, c, "/api/v1/refused", q, &page); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, r := range page.Items {
				typ := ""
				if r.Type != "" {
					typ = r.Type + "^" + r.Event
				}
				rows = append(rows, []string{when(r.At), r.Listener, r.Remote, typ, r.ControlID, r.Ack, r.Code, r.Reason})
			}
			table(cmd.OutOrStdout(), "AT\tLISTENER\tFROM\tTYPE\tCONTROL ID\tACK\tCODE\tREASON", rows)
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		})}
	c.Flags().StringVar(&listener, "listener", "", "listener or source name")
	c.Flags().StringVar(&controlID, "control-id", "", "MSH-10, where it could be read")
	c.Flags().StringVar(&from, "from", "", "refused at or after (RFC 3339 or a date)")
	c.Flags().StringVar(&to, "to", "", "refused before (RFC 3339 or a date)")
	c.Flags().StringVar(&cursor, "cursor", "", "the next page, as the last page said")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return c
}
