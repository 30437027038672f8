package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A sender's resend inside the duplicate window is stored once even when
// serve was killed (SIGKILL) in between and JetStream's own window (three
// store timeouts) has passed: the broker reads the window's records back
// at start. A resend after the window is a new message. The window is
// short here (12 s) to keep the test short; with HL7BROKER_DEFAULT_WINDOW=1
// it runs with the default window and store timeout and resends at 110 s
// and 130 s (docs/benchmarks-log.md has such a run). What was stored is
// read from HL7_IN itself: deliveries may repeat after a kill (at least
// once), stores must not.
func TestResendAcrossAKillIsStoredOnceWithinTheWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: runs serve as a process for about 20 s")
	}
	nats, inside, past := "nats: {duplicate_window: 12s, store_timeout: 1s}", 5*time.Second, 15*time.Second
	if os.Getenv("HL7BROKER_DEFAULT_WINDOW") != "" {
		nats, inside, past = "", 110*time.Second, 130*time.Second
	}
	if raceEnabled {
		t.Skip("fault test: a system test, run without -race (.ci/run's go test ./... runs it)")
	}
	outDir := t.TempDir()
	downstream := startListen(t, "--out", outDir)
	in := freePort(t)
	file := writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin: {addr: ""}
%s
listeners: [{name: adt, addr: "%s"}]
routes: [{name: all, to: [emr]}]
destinations: [{name: emr, type: mllp, addr: "%s", retry: {max_attempts: 0, backoff: [50ms]}}]
`, t.TempDir(), nats, in, downstream))
	msg := func(id string) string {
		f := filepath.Join(t.TempDir(), id+".hl7")
		require.NoError(t, os.WriteFile(f, []byte("MSH|^~\\&|REG|HOSP|EMR|HOSP|20260114081530||ADT^A08|"+id+"|P|2.5\rPID|1||MRN1\r"), 0o644))
		return f
	}
	m := msg("RESEND-1")
	send := func(f string) {
		stdout, _, code := runCmd(t, "send", "--addr", in, f)
		require.Equal(t, 0, code, stdout)
	}
	delivered := func(id string) { // a sync point: id reached the downstream
		testkit.WaitFor(t, 20*time.Second, func() error {
			names, _ := received(t, outDir)
			for _, n := range names {
				if strings.Contains(n, id) {
					return nil
				}
			}
			return fmt.Errorf("%s not delivered; delivered %v", id, names)
		})
	}

	serve := startServeProcess(t, file)
	t0 := time.Now()
	send(m)
	delivered("RESEND-1")
	serve.kill()
	serve = startServeProcess(t, file)
	defer serve.kill()
	assert.Contains(t, serve.stderr.String(), `"messages":1,`, "read back at start: %s", serve.stderr.String())

	time.Sleep(time.Until(t0.Add(inside))) // past JetStream's window (3 store timeouts), inside the broker's
	send(m)
	send(msg("NEXT-1"))
	delivered("NEXT-1")
	time.Sleep(time.Until(t0.Add(past))) // past the window and its last bucket
	send(m)
	send(msg("NEXT-2"))
	delivered("NEXT-2")
	require.NoError(t, serve.stop(20*time.Second))

	cfg, err := config.Load(file)
	require.NoError(t, err)
	n, err := store.Open(context.Background(), cfg)
	require.NoError(t, err)
	defer n.Close()
	s, err := n.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	var stored []string
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		r, err := s.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		stored = append(stored, r.Header.Get(wire.HeaderControlID))
	}
	assert.Equal(t, []string{"RESEND-1", "NEXT-1", "RESEND-1", "NEXT-2"}, stored, "the resend at %s was not stored; the one at %s was", inside, past)
	assert.False(t, slices.Contains(stored, ""), "every record has its control ID")
}
