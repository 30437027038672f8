// Package broker owns the running broker: configuration (viper), the NATS
// connection (embedded server or external cluster) and its streams, the
// ingest handler that stores each message before acknowledging it, and
// the lifecycle that starts and stops them.
package broker
