package delivery

import (
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/hl7broker/hl7broker/internal/testsmtp"
)

const mailADT = "MSH|^~\\&|REG|HOSP|EMR|HOSP|20260114081530||ADT^A01^ADT_A01|MSG001|P|2.5.1\rEVN|A01|20260114081500\rPID|1||MRN1^^^HOSP^MR||Doe^Jane||19610615|F\rPV1|1|I|4E^201^B\r"

// attachments are a mail's parts after its text: their file names and bodies.
func attachments(t *testing.T, ctype string, body io.Reader) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(mt, "multipart/"), "a mail with an attachment is multipart: %s", mt)
	out := map[string]string{}
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		var rd io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			rd = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, _ := io.ReadAll(rd)
		out[p.FileName()] = string(b)
	}
}

// A message mailed over STARTTLS to a real SMTP server (aiosmtpd):
// recipients from the config and, by PV1-3.1 through to_table, the ward's;
// the subject from the message; the message attached as it was received.
func TestEmailArrivesWithTheMessageAttached(t *testing.T) {
	pki := testpki.New(t)
	port, maildir := testsmtp.Start(t, &pki)
	d := config.DestinationConfig{Name: "practice", Type: "email", Timeout: 10 * time.Second, TLS: config.TLSFiles{CAFile: pki.CAFile},
		Options: &EmailOptions{SMTP: EmailSMTP{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, From: "hl7broker@example.org",
			To: []string{"records@example.org"}, Subject: "Admission {{MSH-10}} to {{PV1-3.1}}", ToField: "PV1-3.1",
			ToTable: map[string]string{"4E": "ward4e@example.org, charge4e@example.org"}}}
	dl, err := New(d, nil)
	require.NoError(t, err)
	res := dl.Deliver(context.Background(), Message{Data: []byte(mailADT), ControlID: "MSG001"})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	got := testsmtp.Mails(t, maildir)
	require.Len(t, got, 1)
	m := got[0]
	assert.Equal(t, "Admission MSG001 to 4E", m.Header.Get("Subject"))
	assert.Equal(t, "<records@example.org>, <ward4e@example.org>, <charge4e@example.org>", m.Header.Get("To"))
	parts := attachments(t, m.Header.Get("Content-Type"), m.Body)
	assert.Equal(t, mailADT, strings.ReplaceAll(parts["message-MSG001.hl7"], "\r\n", "\r"), "the message as received")
}

// Over a plain relay (starttls: false) the JSON is attached; a server that
// does not answer is a retry (the worker retries, then dead-letters),
// saying which server and never the message.
func TestEmailJSONAndAServerDown(t *testing.T) {
	port, maildir := testsmtp.Start(t, nil)
	no := false
	opts := EmailOptions{SMTP: EmailSMTP{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), StartTLS: &no}, From: "hl7broker@example.org",
		To: []string{"lab@example.org"}, Attach: "json", Body: "Patient {{PID-3.1}}"}
	dl, err := New(config.DestinationConfig{Name: "lab", Type: "email", Timeout: 5 * time.Second, Options: &opts}, nil)
	require.NoError(t, err)
	res := dl.Deliver(context.Background(), Message{Data: []byte(mailADT)})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	got := testsmtp.Mails(t, maildir)
	require.Len(t, got, 1)
	parts := attachments(t, got[0].Header.Get("Content-Type"), got[0].Body)
	assert.Contains(t, parts["message-MSG001.json"], `"PID.5":[{"PID.5.1":"Doe","PID.5.2":"Jane"}]`)
	assert.Contains(t, parts[""], "Patient MRN1", "the body, rendered")

	down := opts
	down.SMTP.Addr = "127.0.0.1:9"
	dl, err = New(config.DestinationConfig{Name: "lab", Type: "email", Timeout: 2 * time.Second, Options: &down}, nil)
	require.NoError(t, err)
	res = dl.Deliver(context.Background(), Message{Data: []byte(mailADT)})
	assert.Equal(t, Retry, res.Outcome)
	assert.Contains(t, res.Reason, "127.0.0.1:9")
	assert.NotContains(t, res.Reason, "Doe")
}
