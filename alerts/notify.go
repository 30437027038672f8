package alerts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
)

// Notification is what a notifier is told: the rule, its target, when,
// and a detail made of names, counts and durations. It never holds a
// value from a message.
type Notification struct {
	Rule     string    `json:"rule"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Status   string    `json:"status"` // firing or resolved
	Repeat   bool      `json:"repeat"` // a reminder: still firing
	Target   string    `json:"target"`
	Since    time.Time `json:"since"`    // when it fired, or resolved
	FiredAt  time.Time `json:"fired_at"` // when it fired
	Detail   string    `json:"detail"`
	Link     string    `json:"link,omitempty"`
}

// Notifier tells people. Notify is called from the evaluation loop with
// a deadline; an error means not told: the same notification is tried
// again at the next evaluation.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

var errUnknownNotifier = errors.New("no notifier by that name runs")

// Title is a notification's one line: "FIRING emr-down: failing, emr".
func (n Notification) Title() string {
	status := strings.ToUpper(n.Status)
	if n.Repeat {
		status = "STILL FIRING"
	}
	what := n.Kind
	if n.Target != "" {
		what += ", " + n.Target
	}
	return fmt.Sprintf("%s %s: %s", status, n.Rule, what)
}

// Text is a notification in a few plain lines, for mail and chat.
func (n Notification) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", n.Title())
	fmt.Fprintf(&b, "Rule:     %s (%s, %s)\n", n.Rule, n.Kind, n.Severity)
	if n.Target != "" {
		fmt.Fprintf(&b, "Target:   %s\n", n.Target)
	}
	switch {
	case n.Status == Resolved:
		fmt.Fprintf(&b, "Fired:    %s\nResolved: %s (after %s)\n", stamp(n.FiredAt), stamp(n.Since), duration(n.Since.Sub(n.FiredAt)))
	default:
		fmt.Fprintf(&b, "Firing since: %s\n", stamp(n.FiredAt))
	}
	if n.Detail != "" {
		fmt.Fprintf(&b, "Detail:   %s\n", n.Detail)
	}
	if n.Link != "" {
		fmt.Fprintf(&b, "\nConsole:  %s\n", n.Link)
	}
	return b.String()
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// NewNotifier makes the notifier a config entry describes; caFile is its
// smtp.ca_file resolved against the config's folder.
func NewNotifier(c config.NotifierConfig, caFile string) (Notifier, error) {
	switch c.Type {
	case "webhook":
		return newWebhook(c), nil
	case "email":
		return newEmail(c, caFile)
	}
	return nil, fmt.Errorf("notifier %s: no type %q", c.Name, c.Type)
}

// Notifiers are a config's notifiers by name.
func Notifiers(cfg *config.Config) (map[string]Notifier, error) {
	out := map[string]Notifier{}
	for _, c := range cfg.Alerts.Notifiers {
		n, err := NewNotifier(c, cfg.SMTPCAFile(c))
		if err != nil {
			return nil, err
		}
		out[c.Name] = n
	}
	return out, nil
}
