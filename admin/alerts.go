package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/hl7broker/hl7broker/alerts"
)

// Alerts is what the API shows of alerting and changes in it.
type Alerts interface {
	// Alerts are the alerts known now (firing, pending, resolved).
	Alerts(ctx context.Context) ([]alerts.Alert, error)
	// Rules are the rules in force, each with its silence if any.
	Rules(ctx context.Context) ([]AlertRule, error)
	// Silence silences rule until s.Until; nil lifts its silence. An
	// unknown rule is history.ErrNotFound.
	Silence(ctx context.Context, rule string, s *alerts.Silence) error
}

// AlertRule is one rule in force.
type AlertRule struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Target   string          `json:"target,omitempty"`
	Severity string          `json:"severity"`
	Silenced *alerts.Silence `json:"silenced,omitempty"`
}

// alertsPage is GET /api/v1/alerts: items are firing and resolved alerts
// (resolved ones for a day), pending those whose condition holds but not
// yet for the rule's for.
type alertsPage struct {
	Items   []alerts.Alert `json:"items"`
	Pending []alerts.Alert `json:"pending"`
	Rules   []AlertRule    `json:"rules"`
}

func (a *API) listAlerts(w http.ResponseWriter, r *http.Request, _ user) {
	page := alertsPage{Items: []alerts.Alert{}, Pending: []alerts.Alert{}, Rules: []AlertRule{}}
	if a.Alerts != nil {
		all, err := a.Alerts.Alerts(r.Context())
		if err == nil {
			page.Rules, err = a.Alerts.Rules(r.Context())
		}
		if err != nil {
			writeError(w, errorCode(err), err.Error())
			return
		}
		for _, al := range all {
			al.Owed = nil // the engine's bookkeeping
			if al.Status == alerts.Pending {
				page.Pending = append(page.Pending, al)
			} else {
				page.Items = append(page.Items, al)
			}
		}
	}
	writeJSON(w, http.StatusOK, page)
}

type silenceRequest struct {
	For    string `json:"for"`    // a duration: 2h, 30m
	Reason string `json:"reason"` // why, for the audit trail and the console
}

// silence is POST /api/v1/alerts/{rule}/silence (silence) and DELETE of
// the same (lift): notifications stop until then; the rule is still
// evaluated and listed. Both are audited.
func (a *API) silence(lift bool) func(http.ResponseWriter, *http.Request, user) {
	action := map[bool]string{false: "alert.silence", true: "alert.unsilence"}[lift]
	return func(w http.ResponseWriter, r *http.Request, u user) {
		if a.Alerts == nil {
			writeError(w, http.StatusServiceUnavailable, "alerts are not available on this server")
			return
		}
		rule := r.PathValue("rule")
		var s *alerts.Silence
		detail := rule
		if !lift {
			var req silenceRequest
			if err := decode(r, &req); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			d, err := time.ParseDuration(req.For)
			switch {
			case err != nil || d <= 0:
				writeError(w, http.StatusBadRequest, "for: give how long, such as 2h or 30m")
				return
			case d > 30*24*time.Hour:
				writeError(w, http.StatusBadRequest, "for: at most 720h (30 days); a rule that should never notify belongs out of the config")
				return
			case req.Reason == "":
				writeError(w, http.StatusBadRequest, "reason: say why the rule is silenced (it is shown beside the rule and kept in the audit trail)")
				return
			}
			now := time.Now().UTC()
			s = &alerts.Silence{Until: now.Add(d), Reason: req.Reason, By: u.Name, At: now}
			detail = rule + " for " + d.String() + ": " + req.Reason
		}
		if !a.auditReady(w, r) {
			return
		}
		if err := a.Alerts.Silence(r.Context(), rule, s); err != nil {
			a.record(r, u.Name, action, err.Error(), nil, detail)
			writeError(w, errorCode(err), err.Error())
			return
		}
		a.record(r, u.Name, action, "ok", nil, detail)
		out := map[string]any{"rule": rule, "silenced": s != nil}
		if s != nil {
			out["until"] = s.Until
		}
		writeJSON(w, http.StatusOK, out)
	}
}
