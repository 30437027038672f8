package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/history"
	"github.com/spf13/cobra"
)

// The commands that operate a running broker through its admin API; the
// client package writes their answers as text.

// getJSON fetches path and prints it raw with --json, else decodes it into out.
func getJSON(cmd *cobra.Command, c *apiClient, path string, q url.Values, out any) (printed bool, err error) {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), "GET", path, q, nil, &raw); err != nil {
		return false, err
	}
	if c.json {
		client.PrintJSON(cmd.OutOrStdout(), raw)
		return true, nil
	}
	return false, json.Unmarshal(raw, out)
}

// show fetches path and writes the answer as text (or raw with --json).
func show[T any](cmd *cobra.Command, c *apiClient, path string, q url.Values, write func(io.Writer, T)) error {
	var v T
	if printed, err := getJSON(cmd, c, path, q, &v); err != nil || printed {
		return err
	}
	write(cmd.OutOrStdout(), v)
	return nil
}

// post sends body and prints the answer raw with --json, else done.
func post(cmd *cobra.Command, c *apiClient, method, path string, body any, done string) error {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), method, path, nil, body, &raw); err != nil {
		return err
	}
	if c.json {
		client.PrintJSON(cmd.OutOrStdout(), raw)
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), done)
	}
	return nil
}

// postOutcome sends body, prints the outcome, and fails (exit 1) when
// some items failed.
func postOutcome(cmd *cobra.Command, c *apiClient, path string, body any, verb string) error {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), "POST", path, nil, body, &raw); err != nil {
		return err
	}
	var out history.Outcome
	_ = json.Unmarshal(raw, &out)
	if c.json {
		client.PrintJSON(cmd.OutOrStdout(), raw)
	} else {
		client.WriteOutcome(cmd.OutOrStdout(), out, verb)
	}
	if out.Failed > 0 {
		return &cliError{exitFailed, fmt.Sprintf("%d of %d failed", out.Failed, out.Failed+out.Done)}
	}
	return nil
}

// query is the flags given (non-empty) and a limit.
func query(flags map[string]string, limit int) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range flags {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func parseIDs(args []string) ([]string, error) {
	for _, a := range args {
		if n, err := strconv.ParseUint(a, 10, 64); err != nil || n == 0 {
			return nil, usageError(fmt.Sprintf("%q is not an id", a))
		}
	}
	return args, nil
}

// idsOr is a bulk operation's body: the ids given, or what the flag
// selects (from all), not both.
func idsOr(args []string, flag, hint string, selected bool, all func() (map[string]any, error)) (map[string]any, error) {
	switch {
	case len(args) > 0 && selected:
		return nil, usageError("give ids or --" + flag + ", not both")
	case len(args) > 0:
		_, err := parseIDs(args)
		return map[string]any{"ids": args}, err
	case selected:
		return all()
	}
	return nil, usageError(hint)
}

func newMessagesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "messages", Short: "Search, show and replay stored messages (a running broker's admin API)"}
	apiFlags(cmd)
	f := map[string]*string{} // query parameter → its flag's value, shared by search and replay
	for _, k := range []string{"control_id", "text", "type", "event", "listener", "status", "from", "to", "destination", "cursor"} {
		f[k] = new(string)
	}
	var keys []string
	var limit int
	filter := func(c *cobra.Command, withDest bool) {
		for _, fl := range [][3]string{{"control-id", "control_id", "MSH-10"}, {"type", "type", "message type (MSH-9.1), e.g. ADT"},
			{"event", "event", "trigger event (MSH-9.2), e.g. A01"}, {"listener", "listener", "listener name"},
			{"status", "status", "status: " + strings.Join(history.Statuses, ", ")},
			{"from", "from", "received at or after (RFC 3339 or a date)"}, {"to", "to", "received before (RFC 3339 or a date)"},
			{"text", "text", "words in the message, all of them (history.content_search; ngu* a prefix, \"a phrase\")"}} {
			c.Flags().StringVar(f[fl[1]], fl[0], "", fl[2])
		}
		if withDest {
			c.Flags().StringVar(f["destination"], "destination", "", "messages with a copy for this destination (status then is that copy's)")
		}
		c.Flags().StringArrayVar(&keys, "key", nil, "a search key, NAME=VALUE (history.search_keys), repeatable")
		c.Flags().IntVar(&limit, "limit", 50, "at most this many")
	}
	search := func() (url.Values, error) {
		vals := map[string]string{}
		for k, v := range f {
			vals[k] = *v
		}
		q := query(vals, limit)
		for _, kv := range keys {
			name, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, usageError("--key takes NAME=VALUE")
			}
			q.Set("key."+name, v)
		}
		return q, nil
	}
	list := &cobra.Command{Use: "search", Short: "List messages (newest first): no content",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q, err := search()
			if err != nil {
				return err
			}
			return show(cmd, c, "/api/v1/messages", q, client.WriteMessages)
		})}
	filter(list, true)
	list.Flags().StringVar(f["cursor"], "cursor", "", "the next page, as the last page said")

	one := &cobra.Command{Use: "show ID", Short: "Show a message as received, its copies and its journey (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			if _, err := parseIDs(args); err != nil {
				return err
			}
			return show(cmd, c, "/api/v1/messages/"+args[0], nil, client.WriteMessage)
		})}

	var replayDest string
	var replayFilter bool
	replay := &cobra.Command{Use: "replay [ID...]", Short: "Replay messages through today's routes, or resend one destination's copy (--destination)",
		Long: `Replay stores each message again as a new message, marked as a replay of the
original, and routes it by today's routes; with --destination it resends only
that destination's copy as it was sent. Give ids, or --filter with the search
flags to replay what they select (up to --limit).`,
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			body, err := idsOr(args, "filter", "give message ids, or --filter with search flags", replayFilter, func() (map[string]any, error) {
				q, err := search()
				m := map[string]string{}
				for k := range q {
					if k != "limit" {
						m[k] = q.Get(k)
					}
				}
				return map[string]any{"filter": m, "limit": limit}, err
			})
			if err != nil {
				return err
			}
			body["destination"] = replayDest
			return postOutcome(cmd, c, "/api/v1/messages/replay", body, "replayed")
		})}
	filter(replay, false)
	replay.Flags().StringVar(&replayDest, "destination", "", "resend this destination's copy as it was sent (default: reprocess through today's routes)")
	replay.Flags().BoolVar(&replayFilter, "filter", false, "replay what the search flags select")
	cmd.AddCommand(list, one, replay, newRefusedCmd())
	return cmd
}

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List, show, replay and purge dead letters (a running broker's admin API)"}
	apiFlags(cmd)
	var dest, to string
	var all bool
	var limit int
	list := &cobra.Command{Use: "list", Short: "List dead letters with their reasons (newest first)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			return show(cmd, c, "/api/v1/dlq", query(map[string]string{"destination": dest}, limit), client.WriteDeadLetters)
		})}
	list.Flags().StringVar(&dest, "destination", "", "only this destination's")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many")
	one := &cobra.Command{Use: "show ID", Short: "Show a dead letter with its content (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			if _, err := parseIDs(args); err != nil {
				return err
			}
			type letter struct {
				history.DeadLetter
				Message string `json:"message"`
			}
			return show(cmd, c, "/api/v1/dlq/"+args[0], nil, func(w io.Writer, d letter) { client.WriteDeadLetter(w, d.DeadLetter, d.Message) })
		})}
	bulk := func(verb string, extra func(map[string]any)) *cobra.Command {
		return &cobra.Command{Use: verb + " [ID...]", RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			b, err := idsOr(args, "all", "give dead-letter ids, or --all (with --destination to take one destination's)", all, func() (map[string]any, error) {
				return map[string]any{"all": true, "destination": dest, "limit": limit}, nil
			})
			if err != nil {
				return err
			}
			extra(b)
			return postOutcome(cmd, c, "/api/v1/dlq/"+verb, b, verb+"d")
		})}
	}
	replay := bulk("replay", func(b map[string]any) {
		if to != "" {
			b["to"] = to
		}
	})
	replay.Short = "Send dead letters again (to their destination, or --to another)"
	purge := bulk("purge", func(map[string]any) {})
	purge.Short = "Delete dead letters for good (admin role)"
	for _, c := range []*cobra.Command{replay, purge} {
		c.Flags().BoolVar(&all, "all", false, "every dead letter (of --destination)")
		c.Flags().StringVar(&dest, "destination", "", "with --all: only this destination's")
		c.Flags().IntVar(&limit, "limit", 10000, "with --all: at most this many")
	}
	replay.Flags().StringVar(&to, "to", "", "send them to this destination instead")
	cmd.AddCommand(list, one, replay, purge)
	return cmd
}

func newDestinationsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "destinations", Short: "List, pause and resume destinations (a running broker's admin API)"}
	apiFlags(cmd)
	list := &cobra.Command{Use: "list", Short: "Destinations with their queues",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			return show(cmd, c, "/api/v1/destinations", nil, func(w io.Writer, out struct{ Items []admin.DestinationStatus }) {
				client.WriteDestinations(w, out.Items)
			})
		})}
	setPaused := func(verb string) *cobra.Command {
		return &cobra.Command{Use: verb + " NAME", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a destination", Args: cobra.ExactArgs(1),
			RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
				return post(cmd, c, "POST", "/api/v1/destinations/"+url.PathEscape(args[0])+"/"+verb, nil, args[0]+": "+verb+"d")
			})}
	}
	cmd.AddCommand(list, setPaused("pause"), setPaused("resume"))
	return cmd
}

func newAuditCmd() *cobra.Command {
	var from, to, user, action string
	var keys []string
	var limit int
	var asCSV bool
	cmd := &cobra.Command{Use: "audit", Short: "The audit trail: who viewed or changed what, and whose messages (a running broker's admin API)",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			q := query(map[string]string{"from": from, "to": to, "user": user, "action": action}, limit)
			for _, kv := range keys {
				name, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usageError("--key takes NAME=VALUE")
				}
				q.Set("key."+name, v)
			}
			if asCSV {
				q.Set("format", "csv")
				q.Del("limit")
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "GET", "/api/v1/audit", q, nil, &raw); err != nil {
					return err
				}
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			return show(cmd, c, "/api/v1/audit", q, client.WriteAudit)
		})}
	apiFlags(cmd)
	cmd.Flags().StringVar(&from, "from", "", "at or after (RFC 3339 or a date)")
	cmd.Flags().StringVar(&to, "to", "", "before (RFC 3339 or a date)")
	cmd.Flags().StringVar(&user, "user", "", "the token's name")
	cmd.Flags().StringVar(&action, "action", "", "e.g. message.view, dlq.replay, destination.pause")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "a patient's search key, NAME=VALUE: the entries about messages that carry it, repeatable")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "every entry selected (up to 100,000), as CSV")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return cmd
}

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Listeners, routes, destinations and storage of a running broker",
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, _ []string) error {
			return show(cmd, c, "/api/v1/status", nil, client.WriteStatus)
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
			q := query(map[string]string{"listener": listener, "control_id": controlID, "from": from, "to": to, "cursor": cursor}, limit)
			return show(cmd, c, "/api/v1/refused", q, client.WriteRefused)
		})}
	c.Flags().StringVar(&listener, "listener", "", "listener or source name")
	c.Flags().StringVar(&controlID, "control-id", "", "MSH-10, where it could be read")
	c.Flags().StringVar(&from, "from", "", "refused at or after (RFC 3339 or a date)")
	c.Flags().StringVar(&to, "to", "", "refused before (RFC 3339 or a date)")
	c.Flags().StringVar(&cursor, "cursor", "", "the next page, as the last page said")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return c
}
