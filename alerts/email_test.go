package alerts_test

import (
	"context"
	"io"
	"net/mail"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/alerts"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/hl7broker/hl7broker/internal/testsmtp"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rule's email arrives at a real SMTP server with the subject naming
// the rule, its status and target; it repeats while firing and says when
// it resolves; nothing in it is a value from a message.
func TestEmailFiresRepeatsAndResolvesThroughARealSMTPServer(t *testing.T) {
	port, maildir := testsmtp.Start(t, nil)
	nt, err := alerts.NewNotifier(config.NotifierConfig{Name: "mail", Type: "email", From: "hl7broker@example.org",
		To: []string{"oncall@example.org"}, SMTP: config.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: "none"}}, "")
	require.NoError(t, err)
	kv := openKV(t)
	w := &world{facts: alerts.Facts{Now: monday, Started: monday, Destinations: map[string]alerts.DestinationFacts{"emr": {Paused: true, QueueDepth: 42}}}}
	e := &alerts.Engine{ID: "a", Interval: time.Second, Facts: w.get, Store: kv, Log: zerolog.Nop(), Link: "https://broker.example.org/ui/"}
	e.SetRules([]alerts.Rule{{Name: "emr-paused", Kind: "paused", Target: "emr", Severity: "warning", For: 15 * time.Minute,
		Repeat: time.Hour, Notify: []string{"mail"}}}, map[string]alerts.Notifier{"mail": nt})
	ctx := context.Background()
	e.Step(ctx)
	w.advance(15 * time.Minute)
	e.Step(ctx)
	w.advance(time.Hour)
	e.Step(ctx)
	w.set(func(f *alerts.Facts) { f.Destinations["emr"] = alerts.DestinationFacts{} })
	e.Step(ctx)

	got := testsmtp.Mails(t, maildir)
	require.Len(t, got, 3, "fired, repeated, resolved")
	var subjects []string
	for _, m := range got {
		subjects = append(subjects, m.Header.Get("Subject"))
		assert.Equal(t, "<oncall@example.org>", m.Header.Get("To"))
	}
	assert.ElementsMatch(t, []string{"[hl7broker] FIRING emr-paused: paused, emr", "[hl7broker] STILL FIRING emr-paused: paused, emr",
		"[hl7broker] RESOLVED emr-paused: paused, emr"}, subjects)
	var body string
	for _, m := range got {
		if m.Header.Get("Subject") == "[hl7broker] FIRING emr-paused: paused, emr" {
			body = readAll(t, m)
		}
	}
	assert.Contains(t, body, "paused; 42 waiting")
	assert.Contains(t, body, "https://broker.example.org/ui/")
}

// STARTTLS is required, not hoped for: the mail goes over TLS to a server
// whose certificate the configured CA signed.
func TestEmailUsesStartTLSWithThePrivateCA(t *testing.T) {
	pki := testpki.New(t)
	port, maildir := testsmtp.Start(t, &pki)
	nt, err := alerts.NewNotifier(config.NotifierConfig{Name: "mail", Type: "email", From: "hl7broker@example.org",
		To: []string{"oncall@example.org"}, SMTP: config.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: "starttls"}}, pki.CAFile)
	require.NoError(t, err)
	n := alerts.Notification{Rule: "store", Kind: "storage", Severity: "critical", Status: alerts.Firing, Since: monday, FiredAt: monday, Detail: "the disk is full"}
	require.NoError(t, nt.Notify(context.Background(), n))
	require.Len(t, testsmtp.Mails(t, maildir), 1)

	untrusted, err := alerts.NewNotifier(config.NotifierConfig{Name: "mail", Type: "email", From: "hl7broker@example.org",
		To: []string{"oncall@example.org"}, SMTP: config.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: "starttls"}}, "")
	require.NoError(t, err)
	err = untrusted.Notify(context.Background(), n)
	require.Error(t, err, "a certificate no trusted CA signed is refused")
	assert.Contains(t, err.Error(), "email mail:")
}

func readAll(t *testing.T, m *mail.Message) string {
	b, err := io.ReadAll(m.Body)
	require.NoError(t, err)
	return string(b)
}
