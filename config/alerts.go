package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/internal/memory"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// AlertsConfig is alerts: rules that watch the broker, and the notifiers
// they tell when one fires, repeats and resolves.
type AlertsConfig struct {
	// Interval is how often every rule is evaluated (default 15s).
	Interval time.Duration `mapstructure:"interval"`
	// Repeat is how often a rule still firing is told again (default 4h;
	// a rule's own repeat wins).
	Repeat time.Duration `mapstructure:"repeat"`
	// ConsoleURL is the console's address as people reach it
	// (https://broker.example.org/ui/): notifications link to it.
	ConsoleURL string            `mapstructure:"console_url"`
	Notifiers  []NotifierConfig  `mapstructure:"notifiers"`
	Rules      []AlertRuleConfig `mapstructure:"rules"`
}

// NotifierConfig is where notifications go: a webhook (url, format) or
// email (smtp, from, to).
type NotifierConfig struct {
	Name string `mapstructure:"name"`
	Type string `mapstructure:"type" enum:"webhook,email"`
	// URL is the webhook's address; it may hold references to secrets
	// (an incoming webhook's URL is itself a secret).
	URL string `mapstructure:"url" secret:"expand"`
	// Format is the webhook body: json (hl7broker's own), slack or teams.
	Format string     `mapstructure:"format" enum:"json,slack,teams"`
	SMTP   SMTPConfig `mapstructure:"smtp"`
	From   string     `mapstructure:"from"`
	To     []string   `mapstructure:"to"`
}

// SMTPConfig is the mail server an email notifier sends through.
type SMTPConfig struct {
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"` // default 587 (starttls), 465 (tls), 25 (none)
	// TLS is starttls (required), tls (implicit, port 465) or none.
	TLS      string `mapstructure:"tls" enum:"starttls,tls,none"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password" secret:"ref"`
	CAFile   string `mapstructure:"ca_file"` // a private CA the server's certificate is signed by
}

// AlertRuleConfig is one rule.
type AlertRuleConfig struct {
	Name string `mapstructure:"name"`
	Kind string `mapstructure:"kind" enum:"silent,failing,paused,oldest,queue,dead_letters,nak_rate,storage,disk_free,certificate,router"`
	// Target is a listener or source (silent, nak_rate) or a destination
	// (failing, paused, oldest, queue, dead_letters); empty: each of them,
	// one alert apiece.
	Target   string `mapstructure:"target"`
	Severity string `mapstructure:"severity" enum:"critical,warning,info"`
	// For is how long the condition holds before the rule fires; for
	// silent, how long without a message.
	For time.Duration `mapstructure:"for"`
	// Threshold: oldest, a duration; queue and dead_letters, a count;
	// nak_rate, negative ACKs per minute; disk_free, a size (2GiB) or a
	// share (10%).
	Threshold string         `mapstructure:"threshold"`
	Window    time.Duration  `mapstructure:"window"` // dead_letters and nak_rate: counted over (default 10m)
	Days      int            `mapstructure:"days"`   // certificate: expiring within (default 14)
	Repeat    time.Duration  `mapstructure:"repeat"`
	Schedule  ScheduleConfig `mapstructure:"schedule"`
	Notify    []string       `mapstructure:"notify"`

	threshold float64 // by validation
	percent   bool
}

// ScheduleConfig limits a rule to hours of some days, in a named time
// zone: {days: [mon, tue, wed, thu, fri], from: "07:00", to: "19:00",
// time_zone: Europe/Berlin}. Empty: always.
type ScheduleConfig struct {
	Days     []string `mapstructure:"days"`
	From     string   `mapstructure:"from"`
	To       string   `mapstructure:"to"`
	TimeZone string   `mapstructure:"time_zone"`
}

// Schedule is a ScheduleConfig parsed: the days (Sunday first, as
// time.Weekday), minutes after midnight, the zone. From == To: all day.
type Schedule struct {
	Days     [7]bool
	From, To int
	Zone     *time.Location
}

// ThresholdValue is the rule's threshold as a number (a duration in
// seconds, a size in bytes), and whether it is a share in percent.
func (r AlertRuleConfig) ThresholdValue() (v float64, percent bool) { return r.threshold, r.percent }

// Alert rule defaults.
const (
	DefaultAlertInterval = 15 * time.Second
	DefaultAlertRepeat   = 4 * time.Hour
	DefaultAlertWindow   = 10 * time.Minute
	DefaultCertDays      = 14
)

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParsedSchedule is the rule's schedule; nil when it has none.
func (r AlertRuleConfig) ParsedSchedule() *Schedule {
	s, _ := r.Schedule.parse()
	return s
}

func (s ScheduleConfig) parse() (*Schedule, error) {
	if len(s.Days) == 0 && s.From == "" && s.To == "" && s.TimeZone == "" {
		return nil, nil
	}
	var out Schedule
	days := s.Days
	if len(days) == 0 {
		days = weekdays
	}
	for _, d := range days {
		switch d = strings.ToLower(strings.TrimSpace(d)); d {
		case "weekdays":
			for i := 1; i <= 5; i++ {
				out.Days[i] = true
			}
		case "weekends":
			out.Days[0], out.Days[6] = true, true
		default:
			i := slices.Index(weekdays, d)
			if i < 0 {
				return nil, fmt.Errorf("days: %q is not mon, tue, wed, thu, fri, sat, sun, weekdays or weekends", d)
			}
			out.Days[i] = true
		}
	}
	var err error
	if out.From, err = clockMinutes(s.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if out.To, err = clockMinutes(s.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if out.Zone, err = LoadZone(s.TimeZone); err != nil {
		return nil, fmt.Errorf("time_zone: %q is not a time zone the machine knows (such as Europe/Berlin)", s.TimeZone)
	}
	return &out, nil
}

// clockMinutes is "07:30" as minutes after midnight ("" is 0).
func clockMinutes(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time of day such as 07:00", s)
	}
	return hh*60 + mm, nil
}

// kinds of rule by what they watch.
var (
	sourceKinds      = []string{"silent", "nak_rate"}
	destinationKinds = []string{"failing", "paused", "oldest", "queue", "dead_letters"}
)

func (c *Config) defaultAlerts() {
	a := &c.Alerts
	if a.Interval == 0 {
		a.Interval = DefaultAlertInterval
	}
	if a.Repeat == 0 {
		a.Repeat = DefaultAlertRepeat
	}
	for i := range a.Notifiers {
		n := &a.Notifiers[i]
		if n.Type == "webhook" && n.Format == "" {
			n.Format = "json"
		}
		if n.Type == "email" {
			if n.SMTP.TLS == "" {
				n.SMTP.TLS = "starttls"
			}
			if n.SMTP.Port == 0 {
				n.SMTP.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[n.SMTP.TLS]
			}
		}
	}
	for i := range a.Rules {
		r := &a.Rules[i]
		if r.Severity == "" {
			r.Severity = "warning"
		}
		if r.Repeat == 0 {
			r.Repeat = a.Repeat
		}
		if r.Window == 0 && (r.Kind == "dead_letters" || r.Kind == "nak_rate") {
			r.Window = DefaultAlertWindow
		}
		if r.Days == 0 && r.Kind == "certificate" {
			r.Days = DefaultCertDays
		}
		if r.Threshold == "" && r.Kind == "dead_letters" {
			r.Threshold = "1"
		}
	}
}

func (c *Config) validateAlerts(v *validator, sources, destinations map[string]bool) {
	a := &c.Alerts
	if a.Interval < time.Second {
		v.add("alerts.interval", "must be at least 1s")
	}
	if a.ConsoleURL != "" {
		if u, err := url.Parse(a.ConsoleURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add("alerts.console_url", "%s is not an http:// or https:// URL", secret.URL(a.ConsoleURL))
		}
	}
	notifiers := v.names("alerts.notifiers", len(a.Notifiers), func(i int) string { return a.Notifiers[i].Name })
	for i, n := range a.Notifiers {
		c.validateNotifier(v, fmt.Sprintf("alerts.notifiers[%d]", i), n)
	}
	v.names("alerts.rules", len(a.Rules), func(i int) string { return a.Rules[i].Name })
	for i := range a.Rules {
		c.validateRule(v, fmt.Sprintf("alerts.rules[%d]", i), &a.Rules[i], notifiers, sources, destinations)
	}
}

func (c *Config) validateNotifier(v *validator, key string, n NotifierConfig) {
	v.oneOf(key+".type", n.Type, enumOf(n, "Type")...)
	switch n.Type {
	case "webhook":
		if u, err := url.Parse(n.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add(key+".url", "%s is not an http:// or https:// URL", secret.URL(n.URL))
		}
		v.oneOf(key+".format", n.Format, enumOf(n, "Format")...)
		if n.SMTP != (SMTPConfig{}) || n.From != "" || len(n.To) > 0 {
			v.add(key, "smtp, from and to are for type: email")
		}
	case "email":
		if n.SMTP.Host == "" {
			v.add(key+".smtp.host", "the mail server's host name is needed")
		}
		v.oneOf(key+".smtp.tls", n.SMTP.TLS, enumOf(n.SMTP, "TLS")...)
		if n.SMTP.Port < 1 || n.SMTP.Port > 65535 {
			v.add(key+".smtp.port", "%d is not a port", n.SMTP.Port)
		}
		if (n.SMTP.Username == "") != (n.SMTP.Password == "") {
			v.add(key+".smtp", "username and password go together")
		}
		if n.SMTP.Password != "" && n.SMTP.TLS == "none" {
			v.add(key+".smtp.tls", "a password is never sent without TLS: use starttls or tls")
		}
		v.fileExists(key+".smtp.ca_file", c.path(n.SMTP.CAFile))
		if _, err := mail.ParseAddress(n.From); err != nil {
			v.add(key+".from", "%q is not a mail address", n.From)
		}
		if len(n.To) == 0 {
			v.add(key+".to", "at least one address is needed")
		}
		for j, to := range n.To {
			if _, err := mail.ParseAddress(to); err != nil {
				v.add(fmt.Sprintf("%s.to[%d]", key, j), "%q is not a mail address", to)
			}
		}
		if n.URL != "" || n.Format != "" {
			v.add(key, "url and format are for type: webhook")
		}
	}
}

func (c *Config) validateRule(v *validator, key string, r *AlertRuleConfig, notifiers, sources, destinations map[string]bool) {
	v.oneOf(key+".kind", r.Kind, enumOf(*r, "Kind")...)
	v.oneOf(key+".severity", r.Severity, enumOf(*r, "Severity")...)
	switch {
	case r.Target == "":
	case slices.Contains(sourceKinds, r.Kind):
		if !sources[r.Target] {
			v.add(key+".target", "%q is not a listener or source of this config", r.Target)
		}
	case slices.Contains(destinationKinds, r.Kind):
		if !destinations[r.Target] {
			v.add(key+".target", "%q is not a destination of this config", r.Target)
		}
	case r.Kind == "certificate":
	default:
		v.add(key+".target", "a %s rule watches the whole broker: leave target out", r.Kind)
	}
	if r.For < 0 || r.Window < 0 || r.Repeat < 0 || r.Days < 0 {
		v.add(key, "for, window, repeat and days must not be negative")
	}
	if r.Kind == "silent" && r.For <= 0 {
		v.add(key+".for", "how long without a message makes the source silent (such as 30m)")
	}
	if r.Repeat > 0 && r.Repeat < time.Minute {
		v.add(key+".repeat", "at least 1m: a notification a few seconds apart is noise")
	}
	c.parseThreshold(v, key+".threshold", r)
	if _, err := r.Schedule.parse(); err != nil {
		v.add(key+".schedule", "%v", err)
	}
	if len(r.Notify) == 0 {
		v.add(key+".notify", "name at least one notifier (alerts.notifiers)")
	}
	for j, n := range r.Notify {
		if !notifiers[n] {
			v.add(fmt.Sprintf("%s.notify[%d]", key, j), "%q is not a notifier in alerts.notifiers", n)
		}
	}
}

// parseThreshold reads a rule's threshold the way its kind needs it.
func (c *Config) parseThreshold(v *validator, key string, r *AlertRuleConfig) {
	t := strings.TrimSpace(r.Threshold)
	needs := map[string]string{"oldest": "a duration such as 15m", "queue": "a count such as 1000",
		"dead_letters": "a count such as 1", "nak_rate": "negative ACKs per minute such as 5",
		"disk_free": "a size such as 2GiB or a share such as 10%"}[r.Kind]
	if needs == "" {
		if t != "" {
			v.add(key, "a %s rule takes no threshold", r.Kind)
		}
		return
	}
	bad := func() { v.add(key, "%q is not %s", r.Threshold, needs) }
	switch r.Kind {
	case "oldest":
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			bad()
			return
		}
		r.threshold = d.Seconds()
	case "disk_free":
		if p, ok := strings.CutSuffix(t, "%"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || f <= 0 || f >= 100 {
				bad()
				return
			}
			r.threshold, r.percent = f, true
			return
		}
		n, err := memory.ParseSize(t)
		if err != nil || n <= 0 {
			bad()
			return
		}
		r.threshold = float64(n)
	default:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || f <= 0 {
			bad()
			return
		}
		r.threshold = f
	}
}

// path is a file the config names, relative to the config's folder.
func (c *Config) path(file string) string {
	if file == "" || filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(c.dir, file)
}

// SMTPCAFile is a notifier's smtp.ca_file, relative to the config's folder.
func (c *Config) SMTPCAFile(n NotifierConfig) string { return c.path(n.SMTP.CAFile) }
