package alerts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hl7broker/hl7broker/config"
	mail "github.com/wneessen/go-mail"
)

// email sends a plain-text mail through an SMTP server: STARTTLS
// (required, not hoped for), implicit TLS, or none on a trusted relay;
// a password is only ever sent over TLS.
type email struct {
	name     string
	from     string
	to       []string
	settings config.SMTPConfig
	tls      *tls.Config
}

func newEmail(c config.NotifierConfig, caFile string) (*email, error) {
	e := &email{name: c.Name, from: c.From, to: c.To, settings: c.SMTP, tls: &tls.Config{ServerName: c.SMTP.Host, MinVersion: tls.VersionTLS12}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: smtp.ca_file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notifier %s: smtp.ca_file holds no PEM certificate", c.Name)
		}
		e.tls.RootCAs = pool
	}
	return e, nil
}

func (e *email) Notify(ctx context.Context, n Notification) error {
	m := mail.NewMsg()
	if err := m.From(e.from); err != nil {
		return fmt.Errorf("email %s: from: %w", e.name, err)
	}
	if err := m.To(e.to...); err != nil {
		return fmt.Errorf("email %s: to: %w", e.name, err)
	}
	m.Subject("[hl7broker] " + n.Title())
	m.SetDate()
	m.SetMessageID()
	m.SetBodyString(mail.TypeTextPlain, n.Text())
	s := e.settings
	opts := []mail.Option{mail.WithPort(s.Port), mail.WithTimeout(15 * time.Second), mail.WithTLSConfig(e.tls)}
	switch s.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	c, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("email %s: %w", e.name, err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) {
			return fmt.Errorf("email %s: %s:%d: %s", e.name, s.Host, s.Port, se.Reason)
		}
		return fmt.Errorf("email %s: %s:%d: %w", e.name, s.Host, s.Port, err)
	}
	return nil
}
