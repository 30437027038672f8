package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/hl7broker/hl7broker/client"
	"github.com/spf13/cobra"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "Alerts firing, pending and resolved; silence a rule (a running broker's admin API)",
		RunE: show("/api/v1/alerts", nil, client.WriteAlerts)}
	apiFlags(cmd)
	var forD time.Duration
	var reason string
	silence := &cobra.Command{Use: "silence RULE", Short: "Keep a rule's notifications quiet for a while (operator role; audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
			body := map[string]string{"for": forD.String(), "reason": reason}
			return s.Do(cmd.Context(), "POST", silencePath(args[0]), body, fmt.Sprintf("%s: silenced for %s", args[0], forD))
		})}
	silence.Flags().DurationVar(&forD, "for", time.Hour, "how long, such as 2h")
	silence.Flags().StringVar(&reason, "reason", "", "why (shown beside the rule and kept in the audit trail)")
	_ = silence.MarkFlagRequired("reason")
	unsilence := &cobra.Command{Use: "unsilence RULE", Short: "Lift a rule's silence (operator role; audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, s *client.Session, args []string) error {
			return s.Do(cmd.Context(), "DELETE", silencePath(args[0]), nil, args[0]+": notifications resume")
		})}
	cmd.AddCommand(silence, unsilence)
	return cmd
}

func silencePath(rule string) string { return "/api/v1/alerts/" + url.PathEscape(rule) + "/silence" }
