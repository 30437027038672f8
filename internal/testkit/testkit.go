// Package testkit is shared setup for the tests of several packages: a
// valid config over an embedded store in a temporary folder, an external
// NATS server, and test messages. Test code only.
package testkit

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/nats-io/nats-server/v2/server"
)

// ADT is an ADT^A01 with non-ASCII names, control ID MSG00001.
const ADT = "MSH|^~\\&|REGADT|MCM|IFENG|SUNNYVALE|20260114081530||ADT^A01^ADT_A01|MSG00001|P|2.5.1\rPID|1||MRN1^^^MCM^MR||Müller^José\r"

// Config is a valid config with an embedded server in a temp dir.
func Config(t testing.TB) *config.Config {
	t.Helper()
	return &config.Config{DataDir: t.TempDir(), NATS: config.NATSConfig{Durability: "fsync", Replicas: 1, History: time.Hour,
		DuplicateWindow: 2 * time.Minute, StoreTimeout: 15 * time.Second}} // generous: a loaded CI disk can take long to flush
}

// BigMessage is an ORU of exactly size bytes: one OBX whose value pads it.
func BigMessage(t testing.TB, id string, size int) []byte {
	t.Helper()
	head := "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260114120000||ORU^R01^ORU_R01|" + id + "|P|2.5.1\rPID|1||P7^^^LAB^MR||Jones^Mary\rOBX|1|ED|PDF^Report||^application^pdf^Base64^"
	pad := size - len(head) - 1
	if pad <= 0 {
		t.Fatalf("a message of %d bytes cannot hold the header", size)
	}
	return []byte(head + strings.Repeat("A", pad) + "\r")
}

// ExternalNATS starts a NATS server with JetStream on a loopback port
// with NATS's default max_payload (1 MB), as a cluster left at defaults,
// and returns its URL.
func ExternalNATS(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external NATS not ready after 10 s")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// WaitFor polls cond every 10 ms until it returns nil, and fails the
// test with cond's last error (what it was waiting for) after d.
func WaitFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Get fetches url and returns its status and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
