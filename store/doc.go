// Package store owns where messages are kept: NATS JetStream, embedded or
// an external cluster, its three streams, the committers and the group
// syncer behind durability fsync, the janitor of delivered copies, and
// the keeper that brings the embedded store back after a full disk. Code
// above it cannot tell embedded from external.
package store
