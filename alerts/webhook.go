package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// webhook POSTs a JSON body: hl7broker's own (format json), or the shape
// Slack's and Microsoft Teams' incoming webhooks take.
type webhook struct {
	name, url, format string
	client            *http.Client
}

func newWebhook(c config.NotifierConfig) *webhook {
	return &webhook{name: c.Name, url: c.URL, format: c.Format, client: &http.Client{Timeout: 15 * time.Second}}
}

func (w *webhook) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(w.body(n))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %s", w.name, secret.Error(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hl7broker-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.name, secret.Error(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s answered %s", w.name, secret.URL(w.url), resp.Status)
	}
	return nil
}

// body is what is posted for n.
func (w *webhook) body(n Notification) any {
	switch w.format {
	case "slack":
		return map[string]any{"text": n.Text()}
	case "teams":
		// A Teams workflow's "post to a channel when a webhook request is
		// received" takes a message with an Adaptive Card.
		facts := []map[string]string{{"title": "Rule", "value": n.Rule + " (" + n.Kind + ", " + n.Severity + ")"}}
		if n.Target != "" {
			facts = append(facts, map[string]string{"title": "Target", "value": n.Target})
		}
		facts = append(facts, map[string]string{"title": "Since", "value": stamp(n.Since)}, map[string]string{"title": "Detail", "value": n.Detail})
		card := map[string]any{"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.4",
			"body": []any{
				map[string]any{"type": "TextBlock", "text": n.Title(), "weight": "Bolder", "wrap": true},
				map[string]any{"type": "FactSet", "facts": facts},
			}}
		if n.Link != "" {
			card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open the console", "url": n.Link}}
		}
		return map[string]any{"type": "message", "attachments": []any{
			map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}}}
	}
	return struct {
		Notification
		Summary string `json:"summary"`
		Source  string `json:"source"`
	}{n, n.Title(), "hl7broker"}
}
