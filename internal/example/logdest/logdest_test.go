package logdest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
)

func load(t *testing.T, dest string) (*config.Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`listeners: [{name: adt, addr: "127.0.0.1:0"}]
routes: [{name: all, to: [ledger]}]
destinations:
  - `+dest+"\n"), 0o644))
	return config.Load(f)
}

// The one file is all it takes: check knows the type's keys, refuses
// others at their line, checks its enum and its own rules, fills its
// default, and the broker's constructor makes its deliverer.
func TestALogDestinationIsOneFile(t *testing.T) {
	ledgerFile := filepath.Join(t.TempDir(), "ledger.txt")
	cfg, err := load(t, `{name: ledger, type: log, path: `+ledgerFile+`}`)
	require.NoError(t, err)
	d := cfg.Destinations[0]
	assert.Equal(t, &Options{Path: ledgerFile, Format: "text"}, d.Options, "decoded into its own struct, default filled")

	dl, err := delivery.New(d, nil)
	require.NoError(t, err)
	res := dl.Deliver(context.Background(), delivery.Message{Data: []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|C-1|P|2.5\r"), ControlID: "C-1", InSeq: 7})
	require.Equal(t, delivery.Delivered, res.Outcome, res.Reason)
	got, err := os.ReadFile(ledgerFile)
	require.NoError(t, err)
	assert.Equal(t, "message 7 control_id=C-1 bytes=45\n", string(got))

	_, err = load(t, `{name: ledger, type: log, path: relative.txt, format: xml, addr: "127.0.0.1:1"}`)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	var problems []string
	for _, p := range ce.Problems {
		problems = append(problems, p.String())
	}
	text := strings.Join(problems, "\n")
	assert.Contains(t, text, `line 4:64: destinations[0].addr: is not a key of type log destinations`)
	assert.Contains(t, text, `destinations[0].format: "xml" is not one of text, tsv`)
	assert.Contains(t, text, `destinations[0].path: a log destination needs the ledger file's absolute path`)
	assert.Contains(t, string(config.Schema()), `"const": "log"`, "the JSON Schema knows it")
}
