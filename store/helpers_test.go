package store

import (
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
)

// testConfig is a valid config with an embedded server in a temp dir.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	return &config.Config{DataDir: t.TempDir(), NATS: config.NATSConfig{Durability: "fsync", Replicas: 1, History: time.Hour,
		DuplicateWindow: 2 * time.Minute, StoreTimeout: 15 * time.Second}} // generous: a loaded CI disk can take long to flush
}
