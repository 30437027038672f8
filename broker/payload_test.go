package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Messages up to a listener's max_message_bytes are stored and delivered
// byte for byte: the embedded server's max_payload covers the largest
// listener plus room for headers. Before, anything near 1 MB got AE on
// every resend.
func TestLargeMessagesAreStoredAndDelivered(t *testing.T) {
	out := t.TempDir()
	cfg := baseConfig(t)
	cfg.Listeners = []config.ListenerConfig{{Name: "big", Addr: "127.0.0.1:0", MaxMessageBytes: 4 << 20}, {Name: "small", Addr: "127.0.0.1:0"}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"archive"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "archive", Type: "file", Options: &delivery.FileOptions{Dir: out}}}
	p := startPipeline(t, cfg)
	c := &mllp.Client{Addr: p.Addr("big").String(), ReplyTimeout: 30 * time.Second}
	defer c.Close()
	sizes := []int{1 << 20, 2_000_000, 3_900_000}
	sent := map[string][]byte{}
	for i, size := range sizes {
		id := fmt.Sprintf("BIG%d", i)
		msg := testkit.BigMessage(t, id, size)
		reply, err := c.Send(context.Background(), msg)
		require.NoError(t, err)
		ack, err := hl7.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7.AA, ack.Code, "%d bytes: %s", size, ack.Text)
		sent[id] = msg
	}
	// The default listener takes up to 1 MiB: exactly that is stored too.
	small := &mllp.Client{Addr: p.Addr("small").String(), ReplyTimeout: 30 * time.Second}
	defer small.Close()
	msg := testkit.BigMessage(t, "SMALL", config.DefaultMaxMessageBytes)
	reply, err := small.Send(context.Background(), msg)
	require.NoError(t, err)
	ack, err := hl7.ParseAck(reply)
	require.NoError(t, err)
	require.Equal(t, hl7.AA, ack.Code, ack.Text)
	sent["SMALL"] = msg

	testkit.WaitFor(t, 60*time.Second, func() error {
		if n := p.count("archive", "delivered"); n != int64(len(sent)) {
			return fmt.Errorf("%d of %d large messages delivered", n, len(sent))
		}
		return nil
	})
	for id, want := range sent {
		files, _ := filepath.Glob(filepath.Join(out, "*-"+id+".hl7"))
		require.Len(t, files, 1, id)
		got, err := os.ReadFile(files[0])
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "%s delivered byte for byte (%d bytes sent, %d delivered)", id, len(want), len(got))
	}
}

// Against a cluster whose max_payload cannot hold a listener's largest
// message, serve refuses to start and names the key; a listener that left
// max_message_bytes out gets the largest limit that fits instead.
func TestExternalMaxPayloadChecked(t *testing.T) {
	url := testkit.ExternalNATS(t)
	cfg := baseConfig(t)
	cfg.NATS.URL = url
	cfg.Listeners = []config.ListenerConfig{{Name: "ok", Addr: "127.0.0.1:0"}, {Name: "big", Addr: "127.0.0.1:0", MaxMessageBytes: 4 << 20}}
	cfg.ApplyDefaults()
	_, err := Start(context.Background(), cfg, zerolog.Nop(), Hooks{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listeners[1].max_message_bytes")
	assert.Contains(t, err.Error(), "max_payload of 1048576")
	assert.NotContains(t, err.Error(), "listeners[0]", "a defaulted limit is lowered to fit, not refused")

	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("nats:\n  url: "+url+"\nlisteners:\n  - name: big\n    addr: 127.0.0.1:0\n    max_message_bytes: 4194304\n"), 0o600))
	c, err := config.Load(file)
	require.NoError(t, err)
	err = store.CheckNATS(file, c)
	require.Error(t, err, "check connects and sees the same")
	assert.Contains(t, err.Error(), "line 6:")

	cfg.Listeners = cfg.Listeners[:1]
	p := startPipeline(t, cfg)
	assert.Equal(t, 1<<20-wire.HeaderRoom, p.cfg.Listeners[0].MaxMessageBytes, "the default shrinks to what the cluster stores")
}
