package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/hl7broker/hl7broker/alerts"
	"github.com/spf13/cobra"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "Alerts firing, pending and resolved; silence a rule (a running broker's admin API)",
		RunE: apiCommand(listAlerts)}
	apiFlags(cmd)
	var forD time.Duration
	var reason string
	silence := &cobra.Command{Use: "silence RULE", Short: "Keep a rule's notifications quiet for a while (operator role; audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			body := map[string]string{"for": forD.String(), "reason": reason}
			return silenceCall(cmd, c, "POST", args[0], body, fmt.Sprintf("%s: silenced for %s", args[0], forD))
		})}
	silence.Flags().DurationVar(&forD, "for", time.Hour, "how long, such as 2h")
	silence.Flags().StringVar(&reason, "reason", "", "why (shown beside the rule and kept in the audit trail)")
	_ = silence.MarkFlagRequired("reason")
	unsilence := &cobra.Command{Use: "unsilence RULE", Short: "Lift a rule's silence (operator role; audited)", Args: cobra.ExactArgs(1),
		RunE: apiCommand(func(cmd *cobra.Command, c *apiClient, args []string) error {
			return silenceCall(cmd, c, "DELETE", args[0], nil, args[0]+": notifications resume")
		})}
	cmd.AddCommand(silence, unsilence)
	return cmd
}

func listAlerts(cmd *cobra.Command, c *apiClient, _ []string) error {
	var page struct {
		Items, Pending []alerts.Alert
		Rules          []struct {
			Name, Kind, Target, Severity string
			Silenced                     *alerts.Silence
		}
	}
	if printed, err := getJSON(cmd, c, "/api/v1/alerts", nil, &page); err != nil || printed {
		return err
	}
	var rows [][]string
	for _, a := range append(page.Items, page.Pending...) {
		rows = append(rows, []string{a.Rule, a.Status, cmp.Or(a.Target, "-"), a.Severity, a.Since.Local().Format(time.DateTime), a.Detail})
	}
	table(cmd.OutOrStdout(), "RULE\tSTATUS\tTARGET\tSEVERITY\tSINCE\tDETAIL", rows)
	for _, r := range page.Rules {
		if r.Silenced != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "%s is silenced until %s by %s: %s\n", r.Name, r.Silenced.Until.Local().Format(time.DateTime), r.Silenced.By, r.Silenced.Reason)
		}
	}
	return nil
}

func silenceCall(cmd *cobra.Command, c *apiClient, method, rule string, body any, done string) error {
	var raw json.RawMessage
	if err := c.call(cmd.Context(), method, "/api/v1/alerts/"+url.PathEscape(rule)+"/silence", nil, body, &raw); err != nil {
		return err
	}
	if c.json {
		printJSON(cmd.OutOrStdout(), raw)
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), done)
	}
	return nil
}
