package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
)

// The dashboard's counts are the history index's totals: after a restart
// they read what they read before it, not 0, and the streams read again
// by the restarted indexer count nothing twice.
func TestTheDashboardsCountsSurviveARestart(t *testing.T) {
	var failed atomic.Bool
	emr := newEndpoint(t, "", func(_ int, msg []byte) hl7.Outcome {
		if bytes.Contains(msg, []byte("|T-0|")) && failed.CompareAndSwap(false, true) {
			return hl7.Errored // the first message's first attempt fails
		}
		return hl7.Accepted
	})
	cfg := baseConfig(t)
	cfg.History = config.HistoryConfig{Enabled: true}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"emr"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)
	for i := range 3 {
		require.Equal(t, hl7.AA, p.send(t, "adt", adtMsg(fmt.Sprintf("T-%d", i), "M1", "A08")))
	}
	require.Equal(t, hl7.AR, p.send(t, "adt", oruMsg("T-9")), "the adt listener refuses an ORU")

	counts := func(b *Broker) string {
		st := b.status(context.Background())
		var l admin.ListenerStatus
		for _, x := range st.Listeners {
			if x.Name == "adt" {
				l = x
			}
		}
		d := st.Destinations[0]
		return fmt.Sprintf("received %d rejected %d delivered %d failures %d dead_lettered %d", l.Received, l.Rejected, d.Delivered, d.Failures, d.DeadLetter)
	}
	const want = "received 3 rejected 1 delivered 3 failures 1 dead_lettered 0"
	waitCounts := func(b *Broker, want string) {
		t.Helper()
		var saw string
		ok := assert.Eventually(t, func() bool { saw = counts(b); return saw == want }, 15*time.Second, 20*time.Millisecond)
		require.True(t, ok, "waiting for %q, the last status said %q", want, saw)
	}
	waitCounts(p.Broker, want)
	require.NoError(t, p.Shutdown(context.Background()))

	cfg.Listeners[0].Addr, cfg.Listeners[1].Addr = "127.0.0.1:0", "127.0.0.1:0"
	b2, err := Start(context.Background(), cfg, zerolog.New(p.logs), Hooks{})
	require.NoError(t, err)
	defer b2.Shutdown(context.Background())
	require.Equal(t, want, counts(b2), "right after the restart, before any traffic")
	// The restarted indexer reads the streams again from its last
	// positions; a message sent now is counted after that, once.
	c := &mllp.Client{Addr: b2.Addr("adt").String()}
	defer c.Close()
	_, err = c.Send(context.Background(), []byte(adtMsg("T-3", "M1", "A08")))
	require.NoError(t, err)
	const after = "received 4 rejected 1 delivered 4 failures 1 dead_lettered 0"
	waitCounts(b2, after)
}

// A console session survives a restart of the broker (it is kept in the
// store), and signing out ends it.
func TestConsoleSessionSurvivesARestart(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Admin.Addr = "127.0.0.1:0"
	p := startPipeline(t, cfg)
	tok := admin.NewToken("alice", admin.RoleOperator, "alice-token-0123456789")
	p.tokens.Set([]admin.Token{tok})
	post := func(base, path, body, cookie, csrf string) (*http.Response, string) {
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		require.NoError(t, err)
		if cookie != "" {
			req.Header.Set("Cookie", admin.SessionCookie+"="+cookie)
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	session := func(base, cookie string) (int, string) {
		req, err := http.NewRequest("GET", base+"/ui/session", nil)
		require.NoError(t, err)
		req.Header.Set("Cookie", admin.SessionCookie+"="+cookie)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	resp, body := post("http://"+p.AdminAddr().String(), "/ui/login", `{"token":"alice-token-0123456789"}`, "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == admin.SessionCookie {
			cookie = c.Value
		}
	}
	require.NotEmpty(t, cookie)
	var info struct{ User, CSRF string }
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	require.NoError(t, p.Shutdown(context.Background()))

	cfg.Listeners[0].Addr, cfg.Listeners[1].Addr = "127.0.0.1:0", "127.0.0.1:0"
	b2, err := Start(context.Background(), cfg, zerolog.New(p.logs), Hooks{})
	require.NoError(t, err)
	defer b2.Shutdown(context.Background())
	b2.tokens.Set([]admin.Token{tok})
	base := "http://" + b2.AdminAddr().String()
	code, body := session(base, cookie)
	require.Equal(t, http.StatusOK, code, "still signed in after the restart: %s", body)
	assert.Contains(t, body, `"user":"alice"`)

	resp, body = post(base, "/ui/logout", "", cookie, info.CSRF)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	code, _ = session(base, cookie)
	assert.Equal(t, http.StatusUnauthorized, code, "signed out")
}
