package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Firefox is driven over WebDriver BiDi, its own remote protocol, with the
// few commands the test needs: a websocket client of fifty lines rather
// than a dependency (chromedp speaks only Chrome's protocol).

type wsConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialWS(addr, path string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		path, addr, base64.StdEncoding.EncodeToString(key))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &wsConn{c: c, r: r}, nil
}

// send writes one masked text frame.
func (w *wsConn) send(payload []byte) error {
	hdr := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_, err := w.c.Write(append(append(hdr, mask...), masked...))
	return err
}

// read returns the next text message.
func (w *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.r, payload); err != nil {
			return nil, err
		}
		switch h[0] & 0x0f {
		case 8:
			return nil, errors.New("websocket closed")
		case 9, 10: // ping, pong: nothing to keep
			continue
		}
		msg = append(msg, payload...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}

type bidi struct {
	ws *wsConn
	id int
}

// call runs one BiDi command and returns its result.
func (b *bidi) call(method string, params any) (json.RawMessage, error) {
	b.id++
	req, _ := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	if err := b.ws.send(req); err != nil {
		return nil, err
	}
	_ = b.ws.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		data, err := b.ws.read()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var resp struct {
			ID      int             `json:"id"`
			Type    string          `json:"type"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(data, &resp) != nil || resp.ID != b.id {
			continue // an event, or an answer to another command
		}
		if resp.Type == "error" {
			return nil, fmt.Errorf("%s: %s: %s", method, resp.Error, resp.Message)
		}
		return resp.Result, nil
	}
}

// firefox starts Debian's Firefox ESR headless with WebDriver BiDi, or
// skips; it returns a client and the id of its tab.
func firefox(t *testing.T) (*bidi, string) {
	t.Helper()
	path, err := exec.LookPath("firefox-esr")
	if err != nil {
		if path, err = exec.LookPath("firefox"); err != nil {
			t.Skip("no firefox on this machine: .ci/run installs Debian's firefox-esr for the browser tests")
		}
	}
	port := freePort(t)
	_, p, _ := net.SplitHostPort(port)
	profile := t.TempDir()
	cmd := exec.Command(path, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", p, "about:blank")
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var ws *wsConn
	require.Eventually(t, func() bool { ws, err = dialWS(port, "/session"); return err == nil }, 60*time.Second, 100*time.Millisecond,
		"waiting for firefox's WebDriver BiDi endpoint")
	b := &bidi{ws: ws}
	_, err = b.call("session.new", map[string]any{"capabilities": map[string]any{}})
	require.NoError(t, err)
	tree, err := b.call("browsingContext.getTree", map[string]any{})
	require.NoError(t, err)
	var contexts struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	require.NoError(t, json.Unmarshal(tree, &contexts))
	require.NotEmpty(t, contexts.Contexts)
	return b, contexts.Contexts[0].Context
}

// eval evaluates expr in the tab and returns its value as a string.
func (b *bidi) eval(tab, expr string) (string, error) {
	res, err := b.call("script.evaluate", map[string]any{"expression": "Promise.resolve(" + expr + ").then(String)", "target": map[string]any{"context": tab}, "awaitPromise": true})
	if err != nil {
		return "", err
	}
	var out struct {
		Type   string `json:"type"`
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return "", err
	}
	if out.Type == "exception" {
		return "", errors.New(out.ExceptionDetails.Text)
	}
	return out.Result.Value, nil
}

// until opens url (when not empty) until expr's value contains want.
func (b *bidi) until(t *testing.T, tab, url, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		if url != "" {
			_, err := b.call("browsingContext.navigate", map[string]any{"context": tab, "url": "about:blank", "wait": "complete"})
			require.NoError(t, err)
			_, err = b.call("browsingContext.navigate", map[string]any{"context": tab, "url": url, "wait": "complete"})
			require.NoError(t, err)
		}
		for range 10 {
			got, _ = b.eval(tab, expr)
			if strings.Contains(got, want) {
				return
			}
			time.Sleep(100 * time.Millisecond) // polling the page; the failure below says what was awaited
		}
	}
	t.Fatalf("waited 20 s for %q in %s; it is %q", want, expr, got)
}

// signIn signs in at base's console with token and waits to be who.
func (b *bidi) signIn(t *testing.T, tab, base, token, who string) {
	t.Helper()
	b.until(t, tab, base+"/ui/", `document.getElementById("token") ? "form" : ""`, "form")
	_, err := b.eval(tab, fmt.Sprintf(`(document.getElementById("token").value = %s, document.querySelector("#signin button[type=submit]").click(), "")`, js(token)))
	require.NoError(t, err)
	b.until(t, tab, "", `document.getElementById("who").textContent`, who)
}

// The console in Firefox: sign in, find a message by MRN, by a name's
// prefix and by its words, open it (named components, the downstream's
// ACK), a hostile message shown as text, a change without the CSRF token
// refused.
func TestBrowserConsoleFirefox(t *testing.T) {
	b, tab := firefox(t)
	down := startDownstream(t)
	down.accept.Store(true)
	dir := t.TempDir()
	alice, victor := writeToken(t, dir, "alice"), writeToken(t, dir, "victor")
	adminAddr, adtAddr := freePort(t), freePort(t)
	p := startServeProcess(t, operateConfig(t, dir, adminAddr, adtAddr, down.addr, alice, victor, "{max_attempts: 1}"))
	defer p.kill()
	base := "http://" + adminAddr
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostile.hl7"), []byte(hostileADT), 0o600))
	for _, f := range []string{filepath.Join(testdata, "adt_a04_lf.hl7"), filepath.Join(dir, "hostile.hl7")} {
		_, _, code := runCmd(t, "send", "--addr", adtAddr, f)
		require.Equal(t, 0, code)
	}
	token, err := os.ReadFile(alice)
	require.NoError(t, err)
	b.signIn(t, tab, base, strings.TrimSpace(string(token)), "alice (operator)")

	b.until(t, tab, base+"/ui/#/messages?key=mrn&key_value=445566", `document.getElementById("results").textContent`, "A04-778812")
	b.until(t, tab, base+"/ui/#/messages?key=family&key_value=O%27BRIEN", `document.getElementById("results").textContent`, "O'Brien")
	// Words of the message; its fields opened into named components;
	// what the EMR answered.
	b.until(t, tab, base+"/ui/#/messages?text=o%27brien", `document.getElementById("results").textContent`, "A04-778812")
	_, err = b.eval(tab, `(document.querySelector("#results a").click(), "")`)
	require.NoError(t, err)
	b.until(t, tab, "", `(document.querySelector('#fields tr[data-path="PID-5.1"]') || {}).textContent || ""`, "Family Name")
	b.until(t, tab, "", `(document.querySelector('.copy[data-destination="emr"] pre.response') || {}).textContent || ""`, "MSA|AA|A04-778812")
	b.until(t, tab, base+"/ui/#/messages?control_id=HOSTILE-1", `document.getElementById("results").textContent`, "HOSTILE-1")
	_, err = b.eval(tab, `(document.querySelector("#results a").click(), "")`)
	require.NoError(t, err)
	b.until(t, tab, "", `(document.getElementById("fields") || {}).textContent`, "<script>window.pwned=1</script>")
	safe, err := b.eval(tab, `window.pwned === undefined && document.querySelectorAll("main img").length === 0`)
	require.NoError(t, err)
	assert.Equal(t, "true", safe, "markup from the message ran or became an element")

	status, err := b.eval(tab, `fetch("/api/v1/destinations/emr/pause", {method: "POST", credentials: "same-origin"}).then(r => r.status)`)
	require.NoError(t, err)
	assert.Equal(t, "403", status, "a change without the CSRF token")
}
