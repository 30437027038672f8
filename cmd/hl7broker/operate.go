package main

import (
	"io"
	"net/url"
	"strings"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/history"
	"github.com/spf13/cobra"
)

// The commands that operate a running broker through its admin API; the
// client package writes their answers as text.

// queryFlags registers a string flag for each query parameter given
// (name, help, ...; the flag is the name with - for _), --key NAME=VALUE
// when keyHelp is set, and --limit; it returns the query they make.
func queryFlags(c *cobra.Command, limit int, keyHelp string, params ...string) func() (url.Values, error) {
	vals := map[string]*string{}
	for i := 0; i+1 < len(params); i += 2 {
		vals[params[i]] = c.Flags().String(strings.ReplaceAll(params[i], "_", "-"), "", params[i+1])
	}
	var keys *[]string
	if keyHelp != "" {
		keys = c.Flags().StringArray("key", nil, keyHelp)
	}
	n := c.Flags().Int("limit", limit, "at most this many")
	return func() (url.Values, error) {
		m := map[string]string{}
		for k, v := range vals {
			m[k] = *v
		}
		q := client.Query(m, *n)
		if keys == nil {
			return q, nil
		}
		return q, client.Keys(q, *keys)
	}
}

// show is a command's RunE that gets path with the query and writes the
// answer.
func show[T any](path string, query func() (url.Values, error), write func(io.Writer, T)) func(*cobra.Command, []string) error {
	return apiCommand(func(cmd *cobra.Command, s *client.Session, _ []string) error {
		var q url.Values
		var err error
		if query != nil {
			q, err = query()
		}
		if err != nil {
			return err
		}
		return client.Show(cmd.Context(), s, path, q, write)
	})
}

// messageFilters are the search flags of messages search and replay.
var messageFilters = []string{"control_id", "MSH-10", "type", "message type (MSH-9.1), e.g. ADT",
	"event", "trigger event (MSH-9.2), e.g. A01", "listener", "listener name",
	"status", "status: " + strings.Join(history.Statuses, ", "),
	"from", "received at or after (RFC 3339 or a date)", "to", "received before (RFC 3339 or a date)",
	"text", "words in the message, all of them (history.content_search; ngu* a prefix, \"a phrase\")"}

const keyHelp = "a search key, NAME=VALUE (history.search_keys), repeatable"

func newMessagesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "messages", Short: "Search, show and replay stored messages (a running broker's admin API)"}
	apiFlags(cmd)
	list := &cobra.Command{Use: "search", Short: "List messages (newest first): no content"}
	list.RunE = show("/api/v1/messages", queryFlags(list, 50, keyHelp, append(messageFilters,
		"destination", "messages with a copy for this destination (status then is that copy's)",
		"cursor", "the next page, as the last page said")...), client.WriteMessages)
	one := &cobra.Command{Use: "show ID", Short: "Show a message as received, its copies and its journey (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
			if err := client.IDs(args); err != nil {
				return err
			}
			return client.Show(cmd.Context(), s, "/api/v1/messages/"+args[0], nil, client.WriteMessage)
		})}

	var replayDest string
	var replayFilter bool
	replay := &cobra.Command{Use: "replay [ID...]", Short: "Replay messages through today's routes, or resend one destination's copy (--destination)",
		Long: help("messages-replay")}
	search := queryFlags(replay, 50, keyHelp, messageFilters...)
	replay.RunE = apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
		body, err := client.IDsOr(args, "filter", "give message ids, or --filter with search flags", replayFilter, func() (map[string]any, error) {
			q, err := search()
			m := map[string]string{}
			for k := range q {
				if k != "limit" {
					m[k] = q.Get(k)
				}
			}
			limit, _ := cmd.Flags().GetInt("limit")
			return map[string]any{"filter": m, "limit": limit}, err
		})
		if err != nil {
			return err
		}
		body["destination"] = replayDest
		return s.Bulk(cmd.Context(), "/api/v1/messages/replay", body, "replayed")
	})
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
	list := &cobra.Command{Use: "list", Short: "List dead letters with their reasons (newest first)"}
	list.RunE = show("/api/v1/dlq", queryFlags(list, 50, "", "destination", "only this destination's"), client.WriteDeadLetters)
	one := &cobra.Command{Use: "show ID", Short: "Show a dead letter with its content (audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
			if err := client.IDs(args); err != nil {
				return err
			}
			type letter struct {
				history.DeadLetter
				Message string `json:"message"`
			}
			return client.Show(cmd.Context(), s, "/api/v1/dlq/"+args[0], nil, func(w io.Writer, d letter) { client.WriteDeadLetter(w, d.DeadLetter, d.Message) })
		})}
	bulk := func(verb string, extra func(map[string]any)) *cobra.Command {
		return &cobra.Command{Use: verb + " [ID...]", RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
			b, err := client.IDsOr(args, "all", "give dead-letter ids, or --all (with --destination to take one destination's)", all, func() (map[string]any, error) {
				return map[string]any{"all": true, "destination": dest, "limit": limit}, nil
			})
			if err != nil {
				return err
			}
			extra(b)
			return s.Bulk(cmd.Context(), "/api/v1/dlq/"+verb, b, verb+"d")
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
		RunE: show("/api/v1/destinations", nil, func(w io.Writer, out struct{ Items []admin.DestinationStatus }) {
			client.WriteDestinations(w, out.Items)
		})}
	setPaused := func(verb string) *cobra.Command {
		return &cobra.Command{Use: verb + " NAME", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a destination", Args: cobra.ExactArgs(1),
			RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
				return s.Do(cmd.Context(), "POST", "/api/v1/destinations/"+url.PathEscape(args[0])+"/"+verb, nil, args[0]+": "+verb+"d")
			})}
	}
	cmd.AddCommand(list, setPaused("pause"), setPaused("resume"))
	return cmd
}

func newAuditCmd() *cobra.Command {
	var asCSV bool
	cmd := &cobra.Command{Use: "audit", Short: "The audit trail: who viewed or changed what, and whose messages (a running broker's admin API)"}
	query := queryFlags(cmd, 50, "a patient's search key, NAME=VALUE: the entries about messages that carry it, repeatable",
		"from", "at or after (RFC 3339 or a date)", "to", "before (RFC 3339 or a date)", "user", "the token's name",
		"action", "e.g. message.view, dlq.replay, destination.pause")
	cmd.RunE = apiCommand(func(cmd *cobra.Command, s *client.Session, _ []string) error {
		q, err := query()
		if err != nil {
			return err
		} else if !asCSV {
			return client.Show(cmd.Context(), s, "/api/v1/audit", q, client.WriteAudit)
		}
		q.Set("format", "csv")
		q.Del("limit")
		return s.Raw(cmd.Context(), "/api/v1/audit", q)
	})
	apiFlags(cmd)
	cmd.Flags().BoolVar(&asCSV, "csv", false, "every entry selected (up to 100,000), as CSV")
	return cmd
}

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Listeners, routes, destinations and storage of a running broker",
		RunE: show("/api/v1/status", nil, client.WriteStatus)}
	apiFlags(cmd)
	return cmd
}

// newRefusedCmd is "messages refused": what ingest did not store.
func newRefusedCmd() *cobra.Command {
	c := &cobra.Command{Use: "refused", Short: "List messages the broker refused (AR/AE to their sender): header and reason, no content"}
	c.RunE = show("/api/v1/refused", queryFlags(c, 50, "", "listener", "listener or source name", "control_id", "MSH-10, where it could be read",
		"from", "refused at or after (RFC 3339 or a date)", "to", "refused before (RFC 3339 or a date)", "cursor", "the next page, as the last page said"), client.WriteRefused)
	return c
}
