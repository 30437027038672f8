package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Secrets planted in every place a config can hold one (an HTTP
// destination's query token and Authorization header, nats.url's
// password, the redact key) are expanded from the environment and files,
// and never appear in logs, errors, check's output, /readyz or DLQ headers.
func TestSecretsAreReferencedAndNeverPrinted(t *testing.T) {
	const (
		queryToken = "qT0ken-9f8e7d"
		authToken  = "Bearer-aZ7-secret"
		natsPass   = "n4tsPassw0rd"
		redactKey  = "redact-key-0123456789"
	)
	t.Setenv("HL7B_QUERY_TOKEN", queryToken)
	t.Setenv("HL7B_NATS_PASS", natsPass)
	t.Setenv("HL7B_REDACT_KEY", redactKey)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "auth"), []byte(authToken+"\n"), 0o600))
	down := freeAddr(t) // nothing listens: every delivery attempt fails with the URL in Go's error
	admin := freeAddr(t)
	yaml := fmt.Sprintf(`data_dir: %s
admin: {addr: "%s"}
listeners:
  - {name: lab, addr: "127.0.0.1:0"}
routes:
  - name: research
    transform: [{redact: {key: "${env:HL7B_REDACT_KEY}"}}]
    to: [research]
destinations:
  - name: research
    type: http
    url: "http://%s/in?token=${env:HL7B_QUERY_TOKEN}"
    headers: {Authorization: "${file:auth}"}
    timeout: 1s
    retry: {max_attempts: 2, backoff: [10ms]}
`, filepath.Join(dir, "data"), admin, down)
	file := filepath.Join(dir, "hl7broker.yaml")
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	cfg, err := config.Load(file)
	require.NoError(t, err)
	assert.Equal(t, "http://"+down+"/in?token="+queryToken, config.OptionsOf[delivery.HTTPOptions](cfg.Destinations[0]).URL, "expanded at load")
	assert.Equal(t, authToken, config.OptionsOf[delivery.HTTPOptions](cfg.Destinations[0]).Headers["Authorization"])

	p := startPipeline(t, cfg)
	require.Equal(t, hl7.AA, p.send(t, "lab", oruMsg("SEC1")))
	var dlq []string
	select {
	case h := <-p.dlq:
		for k, v := range h {
			dlq = append(dlq, k+": "+strings.Join(v, ","))
		}
		assert.Contains(t, h.Get(wire.HeaderDLQReason), "REDACTED", "the reason shows where it failed, redacted")
	case <-time.After(30 * time.Second):
		t.Fatal("the message was not dead-lettered after its 2 attempts")
	}

	// A reload with broken URLs carrying secrets: refused, and the reason
	// (logged, and in /readyz) shows them redacted.
	bad := strings.Replace(yaml, "url: \"http://", "url: \"http://user:"+natsPass+"@bad host/", 1)
	bad = strings.Replace(bad, "admin:", "nats: {url: \"nats://user:${env:HL7B_NATS_PASS}@nats 1:4222\"}\nadmin:", 1)
	require.NoError(t, os.WriteFile(file, []byte(bad), 0o600))
	reloadErr := p.ReloadFile(file)
	require.Error(t, reloadErr)
	_, ready := testkit.Get(t, "http://"+p.AdminAddr().String()+"/readyz")
	assert.Contains(t, ready, "not an http or https URL", "the reload problem is shown")

	// check's output and serve's startup error for an unreachable cluster
	// with a password.
	_, checkErr := config.Load(file)
	require.Error(t, checkErr)
	unreachable := testkit.Config(t)
	unreachable.NATS.URL = "nats://user:" + natsPass + "@" + freeAddr(t)
	_, startErr := store.Open(context.Background(), unreachable)
	require.Error(t, startErr)
	assert.Contains(t, startErr.Error(), "REDACTED@")

	for where, text := range map[string]string{"logs": p.logs.String(), "DLQ headers": strings.Join(dlq, "\n"), "/readyz": ready,
		"reload error": reloadErr.Error(), "check output": checkErr.Error(), "startup error": startErr.Error()} {
		for _, s := range []string{queryToken, authToken, natsPass, redactKey} {
			assert.NotContains(t, text, s, "a secret in %s", where)
		}
	}
}
