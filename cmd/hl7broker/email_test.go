package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/history"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An email destination whose server is down: the message is retried, then
// dead-lettered with the server's address and no content; check warns that
// starttls: false mails in clear text.
func TestEmailDestinationRetriesThenDeadLetters(t *testing.T) {
	dir := t.TempDir()
	victor := writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
data_dir: %s
admin:
  addr: "%s"
  tokens: [{name: victor, role: viewer, token_file: %s}]
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [practice]}]
destinations:
  - name: practice
    type: email
    smtp: {addr: "127.0.0.1:9", starttls: false}
    from: hl7broker@example.org
    to: [records@example.org]
    retry: {max_attempts: 2, backoff: [20ms]}
`, filepath.Join(dir, "data"), adminAddr, victor, adtAddr)
	out, _, code := runCmd(t, "check", "--config", writeConfig(t, cfg))
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "warning: destinations[0].smtp.starttls: false: messages are mailed in clear text to 127.0.0.1:9")
	stop, stderr := startServe(t, cfg)
	defer stop()
	sent, _, code := runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "adt_a08_crlf.hl7"))
	require.Equal(t, 0, code, sent)
	var page history.DLQPage
	require.Eventually(t, func() bool {
		_, code := cli(t, "http://"+adminAddr, victor, &page, "dlq", "list")
		return code == 0 && len(page.Items) == 1
	}, 20*time.Second, 50*time.Millisecond, "waiting for the dead letter: %+v; %s", &page, stderr)
	assert.Contains(t, page.Items[0].Reason, "gave up after 2 attempts: the mail server 127.0.0.1:9")
	assert.NotContains(t, stderr.String(), "O'Brien", "no content in the log")
}
