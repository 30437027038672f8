package config_test

import (
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The contract config loads, with each default filled in: a
// webhook posts JSON, email uses STARTTLS on 587, a rule warns and is
// told again every 4 hours, thresholds are read as their kind needs.
func TestAlertsContractConfigLoads(t *testing.T) {
	t.Setenv("SMTP_PASSWORD", "s3cret-for-the-relay")
	c, err := config.Load(writeConfig(t, `
listeners: [{name: lab, addr: "127.0.0.1:0"}]
destinations: [{name: emr, type: file, dir: /tmp/x}]
routes: [{name: r, to: [emr]}]
alerts:
  notifiers:
    - {name: oncall, type: webhook, url: "https://hooks.example.org/T000/B000"}
    - {name: mail, type: email, smtp: {host: smtp.example.org, username: hl7, password: "${env:SMTP_PASSWORD}"}, from: hl7broker@example.org, to: [team@example.org]}
  rules:
    - {name: lab-silent, kind: silent,  target: lab, for: 30m, notify: [oncall]}
    - {name: emr-down,   kind: failing, target: emr, for: 10m, notify: [oncall]}
    - {name: emr-late,   kind: oldest,  target: emr, threshold: 15m, notify: [mail]}
    - {name: disk,       kind: disk_free, threshold: 10%, notify: [mail]}
    - {name: dlq,        kind: dead_letters, notify: [mail]}
    - {name: certs,      kind: certificate, notify: [mail], schedule: {days: [weekdays], from: "07:00", to: "19:00", time_zone: Europe/Berlin}}
`))
	require.NoError(t, err)
	a := c.Alerts
	assert.Equal(t, config.DefaultAlertInterval, a.Interval)
	assert.Equal(t, "json", a.Notifiers[0].Format)
	assert.Equal(t, "starttls", a.Notifiers[1].SMTP.TLS)
	assert.Equal(t, 587, a.Notifiers[1].SMTP.Port)
	assert.Equal(t, "s3cret-for-the-relay", a.Notifiers[1].SMTP.Password, "expanded from its reference")
	assert.Equal(t, "warning", a.Rules[0].Severity)
	assert.Equal(t, 4*time.Hour, a.Rules[0].Repeat)
	v, pct := a.Rules[2].ThresholdValue()
	assert.Equal(t, (15 * time.Minute).Seconds(), v)
	assert.False(t, pct)
	v, pct = a.Rules[3].ThresholdValue()
	assert.Equal(t, 10.0, v)
	assert.True(t, pct)
	v, _ = a.Rules[4].ThresholdValue()
	assert.Equal(t, 1.0, v, "dead_letters: one is enough by default")
	assert.Equal(t, config.DefaultAlertWindow, a.Rules[4].Window)
	assert.Equal(t, config.DefaultCertDays, a.Rules[5].Days)
	s := a.Rules[5].ParsedSchedule()
	require.NotNil(t, s)
	assert.Equal(t, [7]bool{false, true, true, true, true, true, false}, s.Days)
	assert.Equal(t, 7*60, s.From)
	assert.Equal(t, 19*60, s.To)
	assert.Equal(t, "Europe/Berlin", s.Zone.String())
}

// Every mistake in alerts is reported at once, at its key: an unknown
// kind, a target that is not in the config, a threshold of the wrong
// sort, a notifier that does not exist, a password written in the file
// or sent without TLS, a bad schedule.
func TestAlertsProblems(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `
listeners: [{name: lab, addr: "127.0.0.1:0"}]
destinations: [{name: emr, type: file, dir: /tmp/x}]
routes: [{name: r, to: [emr]}]
alerts:
  notifiers:
    - {name: hook, type: webhook, url: "ftp://example.org"}
    - {name: mail, type: email, smtp: {host: "", tls: none, username: u, password: plain-text}, from: "not an address", to: []}
    - {name: pager, type: sms}
  rules:
    - {name: a, kind: silence, notify: [hook]}
    - {name: b, kind: silent, target: emr, for: 30m, notify: [hook]}
    - {name: c, kind: failing, target: nosuch, notify: [hook]}
    - {name: d, kind: queue, threshold: lots, notify: [hook]}
    - {name: e, kind: storage, target: emr, notify: [nobody]}
    - {name: f, kind: silent, notify: []}
    - {name: g, kind: silent, for: 1m, schedule: {days: [someday], from: "7am"}, notify: [hook]}
    - {name: h, kind: oldest, threshold: 15m, repeat: 5s, notify: [hook]}
`))
	assert.Contains(t, got["alerts.notifiers[0].url"], "is not an http:// or https:// URL")
	assert.Contains(t, got["alerts.notifiers[1].smtp.password"], "give it by reference")
	assert.Contains(t, got["alerts.notifiers[1].smtp.host"], "host name is needed")
	assert.Contains(t, got["alerts.notifiers[1].from"], "is not a mail address")
	assert.Contains(t, got["alerts.notifiers[1].to"], "at least one address")
	assert.Contains(t, got["alerts.notifiers[2].type"], `"sms" is not one of webhook, email`)
	assert.Contains(t, got["alerts.rules[0].kind"], `"silence" is not one of silent, failing`)
	assert.Contains(t, got["alerts.rules[1].target"], `"emr" is not a listener or source`)
	assert.Contains(t, got["alerts.rules[2].target"], `"nosuch" is not a destination`)
	assert.Contains(t, got["alerts.rules[3].threshold"], `"lots" is not a count`)
	assert.Contains(t, got["alerts.rules[4].target"], "watches the whole broker")
	assert.Contains(t, got["alerts.rules[4].notify[0]"], `"nobody" is not a notifier`)
	assert.Contains(t, got["alerts.rules[5].for"], "how long without a message")
	assert.Contains(t, got["alerts.rules[5].notify"], "name at least one notifier")
	assert.Contains(t, got["alerts.rules[6].schedule"], `"someday"`)
	assert.Contains(t, got["alerts.rules[7].repeat"], "at least 1m")
}
