// Package broker owns the running broker: the NATS connection (embedded
// server or external cluster) and its streams, the ingest handler that
// stores each message before acknowledging it, supervision, reload, the
// admin server, and the lifecycle that starts and stops them.
package broker
