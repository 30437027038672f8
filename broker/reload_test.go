package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reloadFixture is a config file in a temp dir with two file destinations.
type reloadFixture struct {
	dir, file, a, b string
}

func newReloadFixture(t *testing.T) *reloadFixture {
	dir := t.TempDir()
	return &reloadFixture{dir: dir, file: filepath.Join(dir, "hl7broker.yaml"), a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
}

// write saves a config as deploy tools do: a temporary file, then a rename.
func (f *reloadFixture) write(t *testing.T, listeners, routeTo string, admin string) {
	t.Helper()
	yaml := fmt.Sprintf(`
data_dir: %s
nats: {durability: os}
admin: {addr: "%s"}
listeners: %s
routes: [{name: adt, when: {type: ADT}, to: [%s]}]
destinations:
  - {name: a, type: file, dir: %s}
  - {name: b, type: file, dir: %s}
`, filepath.Join(f.dir, "data"), admin, listeners, routeTo, f.a, f.b)
	tmp := f.file + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(yaml), 0o644))
	require.NoError(t, os.Rename(tmp, f.file))
}

// delivered lists the control IDs in a file destination's folder.
func delivered(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var ids []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".hl7"); ok {
			ids = append(ids, name[strings.IndexByte(name, '-')+1:])
		}
	}
	sort.Strings(ids)
	return ids
}

func startFromFile(t *testing.T, file string, reloads chan error) *pipeline {
	t.Helper()
	cfg, err := config.Load(file)
	require.NoError(t, err)
	return startPipelineWithHooks(t, cfg, Hooks{OnReload: func(err error) { reloads <- err }})
}

// Under load, a new file moves the route from a to b: every message acked
// is delivered once, and all of a's come before all of b's (no message is
// routed by a half-applied config).
func TestReloadUnderLoadSwitchesRoutesBetweenMessages(t *testing.T) {
	f := newReloadFixture(t)
	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "a", "")
	reloads := make(chan error, 10)
	p := startFromFile(t, f.file, reloads)
	require.NoError(t, p.WatchFile(f.file, 50*time.Millisecond))

	client := &mllp.Client{Addr: p.Addr("adt").String()}
	defer client.Close()
	send := func(i int) {
		reply, err := client.Send(context.Background(), []byte(adtMsg(fmt.Sprintf("S%05d", i), "M1", "A01")))
		require.NoError(t, err)
		ack, err := hl7.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7.AA, ack.Code)
	}
	sent := 0
	for ; sent < 100; sent++ {
		send(sent)
	}
	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "b", "")
	for reloaded := false; !reloaded; sent++ { // keep sending while the watcher reloads
		send(sent)
		select {
		case err := <-reloads:
			require.NoError(t, err)
			reloaded = true
		default:
		}
		require.Less(t, sent, 100000, "no reload")
	}
	for end := sent + 50; sent < end; sent++ {
		send(sent)
	}
	require.Eventually(t, func() bool { return len(delivered(f.a))+len(delivered(f.b)) >= sent }, 60*time.Second, 20*time.Millisecond, "waiting for %s", `len(delivered(f.a))+len(delivered(f.b)) >= sent`)
	inA, inB := delivered(f.a), delivered(f.b)
	assert.Len(t, append(inA, inB...), sent, "each message delivered once")
	require.NotEmpty(t, inA)
	require.GreaterOrEqual(t, len(inB), 50)
	assert.Less(t, inA[len(inA)-1], inB[0], "every message before the switch went to a, every one after to b")
}

func TestInvalidReloadKeepsTheRunningConfig(t *testing.T) {
	f := newReloadFixture(t)
	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "a", "127.0.0.1:0")
	reloads := make(chan error, 10)
	p := startFromFile(t, f.file, reloads)

	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "nowhere", "127.0.0.1:0")
	err := p.ReloadFile(f.file)
	require.Error(t, err)
	assert.Error(t, <-reloads)
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("K-1", "M1", "A01")))
	require.Eventually(t, func() bool { return len(delivered(f.a)) == 1 }, 10*time.Second, 10*time.Millisecond, "the running route still applies")

	base := "http://" + p.AdminAddr().String()
	code, body := testkit.Get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code, "the running config is fine")
	var r admin.Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	assert.Contains(t, r.Checks["config"], `no destination is named "nowhere"`)
	assert.Contains(t, r.Checks["config"], "previous config running")
	_, metrics := testkit.Get(t, base+"/metrics")
	assert.Contains(t, metrics, `hl7broker_config_reloads_total{result="invalid"} 1`)

	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "b", "127.0.0.1:0")
	require.NoError(t, p.ReloadFile(f.file))
	_, body = testkit.Get(t, base+"/readyz")
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	assert.Equal(t, "ok", r.Checks["config"], "a good reload clears it")
}

func TestReloadAddsAndRemovesListenersWithoutTouchingOthers(t *testing.T) {
	f := newReloadFixture(t)
	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "a", "")
	reloads := make(chan error, 10)
	p := startFromFile(t, f.file, reloads)
	client := &mllp.Client{Addr: p.Addr("adt").String()}
	defer client.Close()
	_, err := client.Send(context.Background(), []byte(adtMsg("L-1", "M1", "A01")))
	require.NoError(t, err)
	p.mu.Lock()
	adtServer := valuesOf[*listenerRun](p.host, "listener")["adt"].srv
	p.mu.Unlock()

	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}, {name: lab, addr: "127.0.0.1:0"}]`, "a", "")
	require.NoError(t, p.ReloadFile(f.file))
	require.NotNil(t, p.Addr("lab"))
	assert.Equal(t, hl7.AA, p.send(t, "lab", adtMsg("L-2", "M1", "A01")), "the new listener takes messages")
	p.mu.Lock()
	assert.Same(t, adtServer, valuesOf[*listenerRun](p.host, "listener")["adt"].srv, "the unchanged listener was not touched")
	p.mu.Unlock()
	assert.EqualValues(t, 1, adtServer.Stats().Active, "its connection is still open")
	_, err = client.Send(context.Background(), []byte(adtMsg("L-3", "M1", "A01")))
	require.NoError(t, err)

	labAddr := p.Addr("lab").String()
	f.write(t, `[{name: adt, addr: "127.0.0.1:0"}]`, "a", "")
	require.NoError(t, p.ReloadFile(f.file))
	assert.Nil(t, p.Addr("lab"))
	_, err = net.DialTimeout("tcp", labAddr, time.Second)
	assert.Error(t, err, "the removed listener no longer accepts")
	require.Eventually(t, func() bool { return len(delivered(f.a)) == 3 }, 10*time.Second, 10*time.Millisecond, "waiting for %s", `len(delivered(f.a)) == 3`)
}

// A reload starts a file source that was added and stops one removed,
// leaving listeners alone.
func TestReloadAddsAndRemovesSources(t *testing.T) {
	f := newReloadFixture(t)
	inbox := filepath.Join(f.dir, "inbox")
	write := func(sources string) {
		yaml := fmt.Sprintf(`
data_dir: %s
nats: {durability: os}
admin: {addr: ""}
listeners: [{name: adt, addr: "127.0.0.1:0"}]
sources: %s
routes: [{name: adt, when: {type: ADT}, to: [a]}]
destinations: [{name: a, type: file, dir: %s}]
`, filepath.Join(f.dir, "data"), sources, f.a)
		require.NoError(t, os.WriteFile(f.file+".tmp", []byte(yaml), 0o644))
		require.NoError(t, os.Rename(f.file+".tmp", f.file))
	}
	write("[]")
	p := startFromFile(t, f.file, make(chan error, 10))
	adtAddr := p.Addr("adt")

	write(fmt.Sprintf(`[{name: drop, type: file, dir: %s, poll: 20ms, stable_for: 0s}]`, inbox))
	require.NoError(t, p.ReloadFile(f.file))
	require.NoError(t, os.MkdirAll(inbox, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "one.hl7"), []byte(adtMsg("S-1", "M1", "A01")), 0o644))
	require.Eventually(t, func() bool { return len(delivered(f.a)) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for the added source's message")
	assert.Equal(t, adtAddr, p.Addr("adt"), "the listener was not touched")

	write("[]")
	require.NoError(t, p.ReloadFile(f.file))
	p.mu.Lock()
	_, running := p.host.get("source:drop")
	p.mu.Unlock()
	assert.False(t, running, "the removed source stopped")
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("S-2", "M1", "A01")))
}
