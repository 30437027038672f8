package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// downstream is an MLLP receiver that answers AR until accept is set,
// and keeps every message it accepted.
type downstream struct {
	addr     string
	accept   atomic.Bool
	mu       sync.Mutex
	accepted []string
	rejected int
}

func startDownstream(t *testing.T) *downstream {
	d := &downstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d.addr = ln.Addr().String()
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		m, err := hl7.Parse(frame)
		if err != nil {
			return nil
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.accept.Load() {
			d.rejected++
			return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: hl7.AckModeOriginal, Text: "unknown patient"})
		}
		d.accepted = append(d.accepted, m.ControlID())
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Accepted, Mode: hl7.AckModeOriginal})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return d
}

func (d *downstream) counts() (accepted []string, rejected int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.accepted...), d.rejected
}

// writeToken writes an API token to a file and returns the file.
func writeToken(t *testing.T, dir, name string) string {
	file := filepath.Join(dir, name+".token")
	require.NoError(t, os.WriteFile(file, []byte("token-of-"+name+"-0123456789abcdef\n"), 0o600))
	return file
}

// operateConfig is a broker with an operator (alice) and a viewer
// (victor), MRNs indexed, one listener and one MLLP destination emr with
// the retry policy given.
func operateConfig(t *testing.T, dir, adminAddr, adtAddr, downAddr, alice, victor, retry string) string {
	return writeConfig(t, fmt.Sprintf(`
data_dir: %s
admin:
  addr: "%s"
  tokens:
    - {name: alice, role: operator, token_file: %s}
    - {name: victor, role: viewer, token_file: %s}
history:
  search_keys: {mrn: PID-3.1, family: {path: PID-5.1, fold: true}}
  content_search: true
listeners:
  - {name: adt, addr: "%s"}
routes:
  - {name: all, to: [emr]}
destinations:
  - {name: emr, type: mllp, addr: "%s", retry: %s}
`, filepath.Join(dir, "data"), adminAddr, alice, victor, adtAddr, downAddr, retry))
}

// cli runs an API command against server with a token file and decodes
// its --json output into out (when given).
func cli(t *testing.T, server, tokenFile string, out any, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := runCmd(t, append(args, "--server", server, "--token-file", tokenFile, "--json")...)
	if out != nil && code == 0 {
		require.NoError(t, json.Unmarshal([]byte(stdout), out), stdout)
	}
	return stdout + stderr, code
}

// The day-2 story of issue 13, over a real serve process: a destination
// answering AR fills the DLQ; dlq list shows the letter and its reason;
// pause, fix, resume, dlq replay; the message arrives once; its journey
// shows both attempts and the replay; audit names who replayed; a viewer
// gets 403 on content and no token 401.
func TestOperateDeadLettersEndToEnd(t *testing.T) {
	down := startDownstream(t)
	dir := t.TempDir()
	alice, victor := writeToken(t, dir, "alice"), writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	cfg := operateConfig(t, dir, adminAddr, adtAddr, down.addr, alice, victor, "{max_attempts: 3, backoff: [20ms]}")
	p := startServeProcess(t, cfg)
	defer p.kill()
	server := "http://" + adminAddr

	_, _, code := runCmd(t, "send", "--addr", adtAddr, filepath.Join(testdata, "adt_a04_lf.hl7"))
	require.Equal(t, 0, code, "the broker stores and acknowledges the message")

	// The destination rejects it: a dead letter with its reason.
	var dlq struct {
		Items []struct {
			ID          string `json:"id"`
			MessageID   string `json:"message_id"`
			ControlID   string `json:"control_id"`
			Destination string `json:"destination"`
			Reason      string `json:"reason"`
			Attempts    int    `json:"attempts"`
		} `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &dlq, "dlq", "list")
		return code == 0 && len(dlq.Items) == 1
	}, 20*time.Second, 50*time.Millisecond, "waiting for the dead letter in dlq list")
	letter := dlq.Items[0]
	assert.Equal(t, "emr", letter.Destination)
	assert.Contains(t, letter.Reason, "AR")
	assert.Equal(t, "A04-778812", letter.ControlID)
	assert.Equal(t, 1, letter.Attempts, "AR is final: dead-lettered at once")

	// Found by control ID and by MRN.
	var page struct {
		Items []struct {
			ID        string `json:"id"`
			ControlID string `json:"control_id"`
			Type      string `json:"type"`
			Status    string `json:"status"`
		} `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code = cli(t, server, victor, &page, "messages", "search", "--control-id", "A04-778812")
		return code == 0 && len(page.Items) == 1 && page.Items[0].Status == "dead_lettered"
	}, 10*time.Second, 50*time.Millisecond, "waiting for the message, dead-lettered, by control ID")
	assert.Equal(t, letter.MessageID, page.Items[0].ID)
	assert.Equal(t, "ADT", page.Items[0].Type)
	_, code = cli(t, server, victor, &page, "messages", "search", "--key", "mrn=445566")
	require.Equal(t, 0, code)
	require.Len(t, page.Items, 1, "found by MRN (PID-3.1)")
	assert.Equal(t, letter.MessageID, page.Items[0].ID)
	require.Eventually(t, func() bool { // the words are indexed as the message is read from the store
		_, code = cli(t, server, victor, &page, "messages", "search", "--text", "o'brien")
		return code == 0 && len(page.Items) == 1
	}, 10*time.Second, 50*time.Millisecond, "waiting for the message, by a word of its content")
	assert.Equal(t, letter.MessageID, page.Items[0].ID)

	// Pause, fix the downstream, resume, replay.
	_, code = cli(t, server, alice, nil, "destinations", "pause", "emr")
	require.Equal(t, 0, code)
	var dests struct {
		Items []struct {
			Name   string
			Paused bool
		} `json:"items"`
	}
	_, code = cli(t, server, victor, &dests, "destinations", "list")
	require.Equal(t, 0, code)
	require.Len(t, dests.Items, 1)
	assert.True(t, dests.Items[0].Paused, "destinations list shows emr paused")
	down.accept.Store(true)
	_, code = cli(t, server, alice, nil, "destinations", "resume", "emr")
	require.Equal(t, 0, code)
	out, code := cli(t, server, alice, nil, "dlq", "replay", "--all", "--destination", "emr")
	require.Equal(t, 0, code, out)

	require.Eventually(t, func() bool { acc, _ := down.counts(); return len(acc) == 1 }, 20*time.Second, 20*time.Millisecond,
		"waiting for the replayed message downstream")
	_, code = cli(t, server, alice, &dlq, "dlq", "list")
	require.Equal(t, 0, code)
	assert.Empty(t, dlq.Items, "the replayed letter left the DLQ")

	// The journey shows both attempts and the replay.
	var view struct {
		Message string
		Journey []struct {
			Kind, Destination, Outcome, Code, By string
		}
		Status string
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &view, "messages", "show", letter.MessageID)
		return code == 0 && view.Status == "delivered"
	}, 10*time.Second, 50*time.Millisecond, "waiting for the message's status to be delivered: %+v", &view)
	var kinds []string
	for _, e := range view.Journey {
		kinds = append(kinds, e.Kind+":"+e.Code+e.By)
	}
	assert.Equal(t, []string{"received:", "routed:", "attempt:AR", "dead_lettered:", "replayed:alice", "delivered:AA"}, kinds)
	assert.Contains(t, view.Message, "MSH|")

	acc, rejected := down.counts()
	assert.Equal(t, []string{"A04-778812"}, acc, "delivered once")
	assert.Equal(t, 1, rejected)

	// The audit trail names alice's replay; the viewer is refused content.
	out, code = cli(t, server, victor, nil, "messages", "show", letter.MessageID)
	assert.Equal(t, client.ExitUnauthorized, code, out)
	assert.Contains(t, out, "403")
	req, _ := http.NewRequest("GET", server+"/api/v1/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token: 401")

	var audit struct {
		Items []struct {
			User, Action, Result string
			IDs                  []string
		} `json:"items"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &audit, "audit", "--action", "dlq.replay")
		return code == 0 && len(audit.Items) == 1
	}, 10*time.Second, 50*time.Millisecond, "waiting for the replay in the audit trail")
	assert.Equal(t, "alice", audit.Items[0].User)
	assert.Equal(t, []string{letter.ID}, audit.Items[0].IDs)
	assert.Equal(t, "ok", audit.Items[0].Result)
	// The same replay, found by the patient's MRN, and exported as CSV.
	_, code = cli(t, server, alice, &audit, "audit", "--action", "dlq.replay", "--key", "mrn=445566")
	require.Equal(t, 0, code)
	require.Len(t, audit.Items, 1, "the replay of MRN 445566's dead letter")
	stdout, _, code := runCmd(t, "audit", "--key", "mrn=445566", "--action", "dlq.replay", "--csv", "--server", server, "--token-file", alice)
	require.Equal(t, 0, code, stdout)
	assert.Contains(t, stdout, "seq,at,user,action,result,ids,keys,detail,remote\n")
	assert.Contains(t, stdout, ",alice,dlq.replay,ok,"+letter.ID+",family=O'Brien; mrn=445566,")
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &audit, "audit", "--action", "request.refused")
		return code == 0 && len(audit.Items) == 2
	}, 10*time.Second, 50*time.Millisecond, "waiting for the two refused requests in the audit trail")
	users := []string{}
	for _, a := range audit.Items {
		users = append(users, a.User)
	}
	assert.ElementsMatch(t, []string{"victor", ""}, users, "refused requests are audited, with the token's name when there was one")

	// Replay the delivered message through today's routes: a new message,
	// marked as a replay, never swallowed by the duplicate window.
	var outcome struct {
		Items []struct {
			ID     string `json:"id"`
			Result string `json:"result"`
			NewID  string `json:"new_id"`
		} `json:"items"`
	}
	_, code = cli(t, server, alice, &outcome, "messages", "replay", letter.MessageID)
	require.Equal(t, 0, code)
	require.Len(t, outcome.Items, 1)
	assert.Equal(t, "ok", outcome.Items[0].Result)
	require.NotEmpty(t, outcome.Items[0].NewID)
	require.Eventually(t, func() bool { acc, _ := down.counts(); return len(acc) == 2 }, 20*time.Second, 20*time.Millisecond,
		"waiting for the reprocessed message downstream")
	var replay struct {
		ReplayOf string `json:"replay_of"`
	}
	require.Eventually(t, func() bool {
		_, code := cli(t, server, alice, &replay, "messages", "show", outcome.Items[0].NewID)
		return code == 0 && replay.ReplayOf != ""
	}, 10*time.Second, 50*time.Millisecond, "waiting for the replay in the index")
	assert.Equal(t, "message "+letter.MessageID, replay.ReplayOf)

	for _, phi := range []string{"O'Brien", "Siobhán", "Müller"} {
		assert.NotContains(t, p.stderr.String(), phi, "no content in the log")
	}
}
