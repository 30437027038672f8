package broker

import (
	"testing"
	"time"
)

// waitFor polls cond every 10 ms until it returns nil, and fails the test
// with cond's last error (what it was waiting for) after d.
func waitFor(t testing.TB, d time.Duration, cond func() error) {
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
