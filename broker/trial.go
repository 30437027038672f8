package broker

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/script"
)

// Trial runs messages through a configuration's listeners' checks, routes,
// steps and encoders as the broker would, with nothing started and
// nothing sent: what `route test` shows and what `import --config`
// checks.
type Trial struct {
	cfg      *config.Config
	routes   []routing.Route
	encoders map[string]trialEncoder // by destination, compiled once
}

type trialEncoder struct {
	enc *script.Script
	err error
}

// TrialResult is what the broker would do with one message.
type TrialResult struct {
	// Refused says why the listener would refuse it (AR, or its
	// accept_types); then nothing else is set but what could be read.
	Refused                  string
	Type, Trigger, ControlID string
	Listener                 string
	// Problems are what the listener's validation finds (none when it
	// is off); with validation: reject, Refused says so too.
	Problems     []spec.Problem
	routing.Plan // the routes' verdicts, dead letters, log lines
	Sent         []TrialCopy
}

// TrialCopy is one copy as its destination would receive it.
type TrialCopy struct {
	routing.Copy
	Sent []byte // the payload as sent (the encoder's, or the HL7 copy)
	Ext  string // hl7, json, xml, txt…: what a file of it is named
	Err  error  // it cannot be encoded for its destination
}

// NewTrial compiles cfg's routes.
func NewTrial(cfg *config.Config) (*Trial, error) {
	routes, err := CompileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	return &Trial{cfg: cfg, routes: routes, encoders: map[string]trialEncoder{}}, nil
}

// Run tries raw as if it came from listener (or, when "", from the first
// listener that accepts its type).
func (t *Trial) Run(listener string, raw []byte) TrialResult {
	m, err := hl7.Parse(raw)
	if err == nil {
		err = m.CheckHeader() // as the listener checks it: an empty MSH-10 is AR
	}
	if err != nil {
		return TrialResult{Refused: "the listener would reject it (AR): " + err.Error()}
	}
	r := TrialResult{Type: m.Type(), Trigger: m.Trigger(), ControlID: m.ControlID()}
	if r.Listener, r.Refused = t.cfg.IntakeFor(listener, m.Type()); r.Refused != "" {
		return r
	}
	if in, ok := t.cfg.Intake(r.Listener); ok && in.Validation != "off" {
		r.Problems = spec.Validate(m)
		if p, err := t.cfg.LoadProfile(in.Profile); err == nil && p != nil && p.Applies(m) {
			r.Problems = append(r.Problems, p.Check(m)...)
		}
		r.Problems = append(r.Problems, t.cfg.SiteRules(r.Listener).Check(r.Listener, m)...)
		if len(r.Problems) > 0 && in.Validation == "reject" {
			r.Refused = fmt.Sprintf("listener %s validates (reject) and finds %d problems (AR)", r.Listener, len(r.Problems))
			return r
		}
	}
	r.Plan = routing.Evaluate(t.routes, t.cfg.Unrouted.To, condition.Input{Listener: r.Listener, Message: m}, raw, true)
	for _, c := range r.Copies {
		tc := TrialCopy{Copy: c, Sent: c.Data, Ext: "hl7"}
		if d, ok := t.cfg.Destination(c.Destination); ok {
			e, cached := t.encoders[d.Name]
			if !cached {
				e.enc, e.err = t.cfg.Encoder(d)
				t.encoders[d.Name] = e
			}
			if tc.Err = e.err; tc.Err == nil {
				tc.Sent, tc.Ext, tc.Err = delivery.AsSent(d, e.enc, c.Data, c.Vars)
			}
		}
		r.Sent = append(r.Sent, tc)
	}
	return r
}

// Routed is, for import's survey, where the routes would send each
// message arriving at listener.
func (t *Trial) Routed(listener string) func(*hl7.Message, []byte) ingest.Routed {
	return func(m *hl7.Message, raw []byte) ingest.Routed {
		plan := routing.Evaluate(t.routes, t.cfg.Unrouted.To, condition.Input{Listener: listener, Message: m}, raw, false)
		r := ingest.Routed{Unrouted: plan.Unrouted}
		for _, c := range plan.Copies {
			r.Destinations = append(r.Destinations, c.Destination)
		}
		for _, d := range plan.DeadLetters {
			r.FailedRoutes = append(r.FailedRoutes, d.Route)
		}
		return r
	}
}

// Surveyor is import's survey with the checks of listener (a listener or
// source of cfg; "" the first) and, for each message, where cfg's routes
// would send it. cfg nil: the default checks and no routes.
func Surveyor(cfg *config.Config, listener string) (*ingest.Surveyor, error) {
	if cfg == nil {
		in := config.ListenerConfig{Name: "import", MaxMessageBytes: config.DefaultMaxMessageBytes, Validation: "record"}
		return ingest.NewSurveyor(ingest.New(in, nil, zerolog.Nop())), nil
	}
	trial, err := NewTrial(cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.Intakes() {
		if listener == "" || l.Name == listener {
			in := ingest.New(l, nil, zerolog.Nop())
			if in.Profile, err = cfg.LoadProfile(l.Profile); err != nil {
				return nil, err
			}
			in.Rules = cfg.SiteRules(l.Name)
			sv := ingest.NewSurveyor(in)
			sv.Route = trial.Routed(l.Name)
			return sv, nil
		}
	}
	return nil, fmt.Errorf("no listener or source is named %q", listener)
}
