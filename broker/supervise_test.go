package broker

import (
	"context"
	"errors"
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
	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/hl7broker/hl7broker/transforms"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicStep is a transform step with a bug: it panics on messages whose
// control ID starts with POISON.
type panicStep struct{}

func (panicStep) String() string { return "buggy PID-3" }

func (panicStep) Apply(m *hl7.Message) error {
	if strings.HasPrefix(m.ControlID(), "POISON") {
		var table map[string]string
		table["x"] = "y" // a nil map write
	}
	return nil
}

// A step that panics on one message sends that message to the DLQ with a
// reason naming the step, counts it, and the rest flow on; before, it
// killed serve, and every restart crashed again on the same input.
func TestPanickingTransformStepDeadLettersOnlyThatMessage(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)
	table := p.router.Table()
	table.Routes[0].Transform = transforms.Pipeline{panicStep{}}
	p.router.SetTable(table)

	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("OK-1", "M1", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("POISON-1", "M2", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("OK-2", "M3", "A01")))
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n := len(emr.got()); n != 2 {
			return fmt.Errorf("%d of the 2 good messages delivered", n)
		}
		return nil
	})
	s, err := p.NATS().JetStream.Stream(context.Background(), wire.StreamDLQ)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "hl7.dlq._transform")
	require.NoError(t, err)
	assert.Equal(t, "POISON-1", m.Header.Get(wire.HeaderControlID))
	assert.Contains(t, m.Header.Get(wire.HeaderDLQReason), "step 1 (buggy PID-3)")
	assert.Contains(t, m.Header.Get(wire.HeaderDLQReason), "panicked")
	assert.Equal(t, 1.0, testutil.ToFloat64(p.metrics.deadLettered.WithLabelValues(wire.TransformDLQ)), "router dead letters are counted")
}

// panicDeliverer panics on POISON messages and records the others.
type panicDeliverer struct{ got chan string }

func (d *panicDeliverer) Deliver(_ context.Context, m delivery.Message) delivery.Result {
	if strings.HasPrefix(m.ControlID, "POISON") {
		panic(errors.New("deliverer bug"))
	}
	d.got <- m.ControlID
	return delivery.Result{Outcome: delivery.Delivered}
}

func (d *panicDeliverer) Close() error { return nil }

// A deliverer that panics on one message dead-letters that message, with
// a reason naming the delivery step, and delivers the next.
func TestPanickingDelivererDeadLettersOnlyThatMessage(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "file", Options: &delivery.FileOptions{Dir: t.TempDir()}, Retry: fast}}
	p := startPipeline(t, cfg)
	p.mu.Lock()
	p.stopWorker("emr") // its queue is taken over by a worker with a buggy deliverer
	p.mu.Unlock()
	d := &panicDeliverer{got: make(chan string, 10)}
	dlq := make(chan nats.Header, 1)
	w := &delivery.Worker{JetStream: p.NATS().JetStream, Log: p.log, Sync: p.NATS().Sync,
		Dest: delivery.Destination{Name: "emr", Type: "buggy", Ordering: "fifo", MaxAttempts: 3, Timeout: time.Second,
			NewDeliverer: func() (delivery.Deliverer, error) { return d, nil }},
		OnDone: func(outcome string, h nats.Header) {
			if outcome == "dead_lettered" {
				dlq <- h
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("POISON-2", "M1", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("OK-3", "M2", "A01")))
	select {
	case h := <-dlq:
		assert.Equal(t, "POISON-2", h.Get(wire.HeaderControlID))
		assert.Contains(t, h.Get(wire.HeaderDLQReason), "the buggy delivery step panicked")
	case <-time.After(10 * time.Second):
		t.Fatal("the poison message was not dead-lettered")
	}
	select {
	case id := <-d.got:
		assert.Equal(t, "OK-3", id, "the next message is delivered")
	case <-time.After(10 * time.Second):
		t.Fatal("the message after the poison one was not delivered")
	}
}

// A worker whose setup fails (its TLS CA file holds no certificate) is restarted with
// backoff; while it is down /readyz answers 503 naming it and
// component_up says 0. Once the file is back it starts and delivers.
func TestFailedWorkerIsRestartedAndReported(t *testing.T) {
	pki := testpki.New(t)
	good, err := os.ReadFile(pki.CAFile)
	require.NoError(t, err)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not a certificate"), 0o600)) // readable, so valid; NewDeliverer fails
	out := t.TempDir()
	cfg := baseConfig(t)
	cfg.Admin.Addr = "127.0.0.1:0"
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "file", Options: &delivery.FileOptions{Dir: out}, TLS: config.TLSFiles{CAFile: ca}}}
	p := startPipeline(t, cfg)
	base := "http://" + p.AdminAddr().String()

	testkit.WaitFor(t, 10*time.Second, func() error {
		code, body := testkit.Get(t, base+"/readyz")
		if code != 503 || !strings.Contains(body, "destination:emr: restarting") {
			return fmt.Errorf("/readyz answers %d %s", code, body)
		}
		return nil
	})
	_, metrics := testkit.Get(t, base+"/metrics")
	assert.Contains(t, metrics, `hl7broker_component_up{component="destination:emr"} 0`)
	assert.Contains(t, metrics, `hl7broker_component_up{component="router"} 1`)
	assert.Contains(t, metrics, `hl7broker_component_restarts_total{component="destination:emr"}`)

	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("R-1", "M1", "A01")), "ingest goes on meanwhile")
	require.NoError(t, os.WriteFile(ca, good, 0o600))
	testkit.WaitFor(t, 30*time.Second, func() error {
		if n := p.count("emr", "delivered"); n != 1 {
			return fmt.Errorf("the restarted worker delivered %d of 1", n)
		}
		return nil
	})
}
