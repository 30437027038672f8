package delivery

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
)

// EmailOptions are the keys of type email: a message mailed to a practice
// or a department, as the body's text and an attachment.
type EmailOptions struct {
	SMTP    EmailSMTP `mapstructure:"smtp"`
	From    string    `mapstructure:"from"`
	To      []string  `mapstructure:"to"`
	Subject string    `mapstructure:"subject"` // text with {{PATH}} placeholders (PID-5.1, MSH-10)
	Body    string    `mapstructure:"body"`    // the same; default: a line naming the message
	// Attach is what is attached: the message as received (er7, a .hl7
	// file), its JSON (json) or its FHIR Bundle (fhir); none attaches
	// nothing.
	Attach string `mapstructure:"attach" enum:"er7,json,fhir,none"`
	// ToField and ToTable pick recipients by a field's value through a
	// code table: the value's addresses (comma-separated) go beside To.
	ToField string            `mapstructure:"to_field"`
	ToTable map[string]string `mapstructure:"to_table"`
}

// EmailSMTP is the mail server: HOST:PORT, a login if it asks for one, and
// STARTTLS (required unless false, which sends in clear: check warns).
type EmailSMTP struct {
	Addr     string `mapstructure:"addr"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password" secret:"ref"`
	StartTLS *bool  `mapstructure:"starttls"`
}

// type email: one mail per message, over SMTP.
func init() {
	Register(Type[EmailOptions]{
		Name:      "email",
		Encodings: []string{"er7"},
		Check: func(o *EmailOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			c.Addr(key+".smtp.addr", o.SMTP.Addr)
			if o.From == "" {
				c.Add(key+".from", "an email destination needs from: the sender's address")
			} else if mail.NewMsg().From(o.From) != nil {
				c.Add(key+".from", "%q is not an email address", o.From)
			}
			for i, to := range o.To {
				if mail.NewMsg().To(to) != nil {
					c.Add(fmt.Sprintf("%s.to[%d]", key, i), "%q is not an email address", to)
				}
			}
			if len(o.To) == 0 && o.ToField == "" {
				c.Add(key+".to", "an email destination needs to: (addresses) or to_field with to_table")
			}
			if o.ToField != "" {
				if _, err := hl7.ParsePath(o.ToField); err != nil {
					c.Add(key+".to_field", "%q is not a field path such as PV1-3.1", o.ToField)
				}
				if len(o.ToTable) == 0 {
					c.Add(key+".to_table", "to_field needs to_table: each value's addresses")
				}
			}
			for _, t := range []struct{ key, text string }{{"subject", o.Subject}, {"body", o.Body}} {
				if _, err := parseMailTemplate(t.text); err != nil {
					c.Add(key+"."+t.key, "%v", err)
				}
			}
			if o.SMTP.Password != "" && o.SMTP.Username == "" {
				c.Add(key+".smtp.username", "smtp.password needs smtp.username")
			}
		},
		Defaults: func(o *EmailOptions, _ *config.DestinationConfig) {
			if o.Attach == "" {
				o.Attach = "er7"
			}
			if o.Subject == "" {
				o.Subject = "HL7 message {{MSH-9.1}}^{{MSH-9.2}} {{MSH-10}}"
			}
			if o.SMTP.StartTLS == nil {
				yes := true
				o.SMTP.StartTLS = &yes
			}
		},
		Warnings: func(o *EmailOptions, key string) []config.Problem {
			if o.SMTP.StartTLS != nil && !*o.SMTP.StartTLS {
				return []config.Problem{{Key: key + ".smtp.starttls", Message: "false: messages are mailed in clear text to " + o.SMTP.Addr + " (patient data on the network)"}}
			}
			return nil
		},
		New: func(o *EmailOptions, d config.DestinationConfig, env Env) (Deliverer, error) {
			return newEmailDeliverer(*o, d, env)
		},
	})
}

// emailDeliverer mails each message.
type emailDeliverer struct {
	o                      EmailOptions
	host                   string
	port                   int
	subject, body          mailTemplate
	toField                hl7.Path
	attach                 Encoding
	attachName, attachType string
	tls                    *tls.Config
	timeout                time.Duration
}

func newEmailDeliverer(o EmailOptions, d config.DestinationConfig, env Env) (*emailDeliverer, error) {
	host, port, err := net.SplitHostPort(o.SMTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("destination %s: smtp.addr: %w", d.Name, err)
	}
	if o.SMTP.StartTLS == nil { // the defaults, for a caller that did not validate
		yes := true
		o.SMTP.StartTLS = &yes
	}
	o.Attach = cmp.Or(o.Attach, "er7")
	o.Subject = cmp.Or(o.Subject, "HL7 message {{MSH-9.1}}^{{MSH-9.2}} {{MSH-10}}")
	e := &emailDeliverer{o: o, host: host, timeout: cmp.Or(d.Timeout, 30*time.Second)}
	e.port, _ = strconv.Atoi(port)
	e.subject, _ = parseMailTemplate(o.Subject)
	e.body, _ = parseMailTemplate(o.Body)
	if o.ToField != "" {
		e.toField, _ = hl7.ParsePath(o.ToField)
	}
	e.tls = env.TLS
	if e.tls == nil {
		e.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	e.tls = e.tls.Clone()
	e.tls.ServerName = host
	if o.Attach != "none" {
		ad := d
		ad.Encoding = o.Attach
		if o.Attach == "er7" {
			ad.Encoding = ""
		}
		if e.attach, err = NewEncoding(ad, nil); err != nil {
			return nil, fmt.Errorf("destination %s: attach: %w", d.Name, err)
		}
		if e.attach == nil { // er7 as received
			e.attach = func(m Message) ([]byte, error) { return m.Data, nil }
		}
		e.attachType = map[string]string{"er7": "x-application/hl7-v2+er7", "json": "application/json", "fhir": "application/fhir+json"}[o.Attach]
		e.attachName = map[string]string{"er7": "hl7", "json": "json", "fhir": "json"}[o.Attach]
	}
	return e, nil
}

func (e *emailDeliverer) Deliver(ctx context.Context, msg Message) Result {
	m, err := hl7.Parse(msg.Data)
	if err != nil {
		return Result{Outcome: Rejected, Reason: "not an HL7 message: " + err.Error()}
	}
	to := slices.Clone(e.o.To)
	if e.o.ToField != "" {
		v := m.ValueString(e.toField)
		addrs, ok := e.o.ToTable[v]
		if !ok {
			if len(to) == 0 {
				return Result{Outcome: Rejected, Reason: e.o.ToField + "'s value is not a key of to_table, and to names no one"}
			}
		}
		for a := range strings.SplitSeq(addrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				to = append(to, a)
			}
		}
	}
	mm := mail.NewMsg()
	if err := mm.From(e.o.From); err != nil {
		return Result{Outcome: Rejected, Reason: "from: " + err.Error()}
	}
	if err := mm.To(to...); err != nil {
		return Result{Outcome: Rejected, Reason: "to: an address from to_table is not an email address"}
	}
	subject := e.subject.render(m)
	mm.Subject(subject)
	mm.SetDate()
	mm.SetMessageID()
	body := e.body.render(m)
	if e.o.Body == "" {
		body = fmt.Sprintf("HL7 message %s^%s, control ID %s, from %s.\n", m.Type(), m.Trigger(), m.ControlID(), m.SendingFacility())
	}
	mm.SetBodyString(mail.TypeTextPlain, body)
	var attached []byte
	if e.attach != nil {
		if attached, err = e.attach(msg); err != nil {
			return Result{Outcome: Rejected, Reason: "cannot encode the attachment: " + err.Error()}
		}
		name := "message-" + sanitizeName(m.ControlID()) + "." + e.attachName
		if err := mm.AttachReader(name, strings.NewReader(string(attached)), mail.WithFileContentType(mail.ContentType(e.attachType))); err != nil {
			return Result{Outcome: Rejected, Reason: "attachment: " + err.Error()}
		}
	}
	s := e.o.SMTP
	opts := []mail.Option{mail.WithPort(e.port), mail.WithTimeout(e.timeout), mail.WithTLSConfig(e.tls), mail.WithTLSPolicy(mail.TLSMandatory)}
	if !*s.StartTLS {
		opts[len(opts)-1] = mail.WithTLSPolicy(mail.NoTLS)
	}
	if s.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	c, err := mail.NewClient(e.host, opts...)
	if err != nil {
		return Result{Outcome: Rejected, Reason: "smtp: " + err.Error()}
	}
	sent := []byte("To: " + strings.Join(to, ", ") + "\nSubject: " + subject + "\n\n" + body)
	if err := c.DialAndSendWithContext(ctx, mm); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && slices.Contains([]mail.SendErrReason{mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose}, se.Reason) {
			return Result{Outcome: Rejected, Reason: fmt.Sprintf("the mail server %s refused it: %s", s.Addr, mailReason(se)), Sent: sent}
		}
		return Result{Outcome: Retry, Reason: fmt.Sprintf("the mail server %s: %s", s.Addr, mailReason(err)), Sent: sent}
	}
	return Result{Outcome: Delivered, Code: "250", Sent: sent, Response: []byte("250 accepted for " + strings.Join(to, ", "))}
}

// mailReason is why a send failed, without the message: go-mail's
// errors name the step and the server's reply.
func mailReason(err error) string {
	var se *mail.SendError
	if errors.As(err, &se) {
		r := se.Reason.String()
		if se.ErrorCode() != 0 {
			r += fmt.Sprintf(" (%d)", se.ErrorCode())
		}
		return r
	}
	return err.Error()
}

func (e *emailDeliverer) Close() error { return nil }

// sanitizeName keeps letters, digits, '.', '-' and '_' of a file name.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// mailTemplate is text with {{PATH}} placeholders, each replaced by the
// field's value (decoded).
type mailTemplate []mailPart

type mailPart struct {
	text string
	path *hl7.Path
}

func parseMailTemplate(s string) (mailTemplate, error) {
	var t mailTemplate
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t = append(t, mailPart{text: s})
			break
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("a {{ without its }}")
		}
		p, err := hl7.ParsePath(strings.TrimSpace(s[i+2 : i+j]))
		if err != nil {
			return nil, fmt.Errorf("{{%s}} is not a field path such as PID-5.1", s[i+2:i+j])
		}
		t = append(t, mailPart{text: s[:i]}, mailPart{path: &p})
		s = s[i+j+2:]
	}
	return t, nil
}

func (t mailTemplate) render(m *hl7.Message) string {
	var b strings.Builder
	for _, p := range t {
		if p.path != nil {
			b.WriteString(m.ValueString(*p.path))
		} else {
			b.WriteString(p.text)
		}
	}
	return strings.ReplaceAll(b.String(), "\r", " ")
}
