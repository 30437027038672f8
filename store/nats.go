package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// embeddedServerName is stable so the embedded server keeps its identity
// (and JetStream its store) across restarts.
const embeddedServerName = "hl7broker"

// NATS is the broker's connection to JetStream, through an embedded
// server or an external cluster; code above this package cannot tell which.
type NATS struct {
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	// Syncer, when set, makes stored messages durable: durability fsync
	// on the embedded server, where one flush of the store's file system
	// covers every message stored before it (group commit). Whoever
	// promises that a message is stored (an ACK to a sender, the router's
	// and the dead-letter queue's acks) waits on it first. Nil with
	// durability os, an external cluster (its own sync settings and
	// replicas decide), or where the server syncs every write itself.
	Syncer   *Syncer
	server   *server.Server // nil for an external cluster
	storeDir string         // the embedded server's StoreDir
	closed   chan struct{}  // closed when Conn has closed

	embed EmbedOptions
}

// TCPURL is the embedded server's loopback URL, with ListenTCP.
func (n *NATS) TCPURL() string { return n.server.ClientURL() }

// Server is the embedded NATS server, nil with an external cluster.
func (n *NATS) Server() *server.Server { return n.server }

// RouterHorizon is JetStream's duplicate window on HL7_OUT: how long after
// a copy is stored its input can be routed again by a router that did not
// crash or lose its pin: the router's ack wait (10 s) and a standby's
// takeover (the shared pin's 15 s time to live), with room to spare. An
// input routed again later (after a crash and a restart, say) is matched
// with the copies HL7_OUT already holds by the router itself
// (routing.Router's recover reads HL7_OUT's tail), so the window need not
// cover it. routing's tests check the arithmetic.
const RouterHorizon = 30 * time.Second

// InWindow is JetStream's duplicate window on HL7_IN: the configured one
// where other brokers share the store (each must see every resend). Else
// the broker's ingest keeps the configured window itself (ingest.Recent),
// and the server's is three store timeouts: a publish retried within its
// timeout, or a resend arriving while its original is being stored, is
// still deduplicated by the server. A longer server window costs some 180
// bytes of memory a message.
func (n *NATS) InWindow(c *config.Config) time.Duration {
	if n.Shared() {
		return c.NATS.DuplicateWindow
	}
	return min(c.NATS.DuplicateWindow, 3*c.NATS.StoreTimeout)
}

// Shared reports whether other broker instances may use the same streams
// and consumers: an external NATS, or the embedded server with a TCP port.
func (n *NATS) Shared() bool { return n.server == nil || n.embed.ListenTCP }

// Committer is how ingest stores messages on this connection: one
// publish per message, then, with a Syncer, the group flush.
func (n *NATS) Committer(timeout time.Duration) Committer {
	c := &PublishCommitter{JetStream: n.JetStream, Timeout: timeout}
	if n.Syncer == nil {
		return c
	}
	return &SyncedCommitter{Publisher: c, Syncer: n.Syncer, Timeout: timeout}
}

// BatchCommitter is how a source that can wait for durability until the
// end of a batch (a file) stores: one publish per message, no flush; the
// source calls Sync before it reports the batch done.
func (n *NATS) BatchCommitter(timeout time.Duration) Committer {
	return &PublishCommitter{JetStream: n.JetStream, Timeout: timeout}
}

// Sync waits for the Syncer, if any.
func (n *NATS) Sync(ctx context.Context) error {
	if n.Syncer == nil {
		return nil
	}
	return n.Syncer.Sync(ctx)
}

// SyncSoon is Sync for a caller that can wait up to d for a flush that
// another caller begins (see Syncer.SyncWithin).
func (n *NATS) SyncSoon(ctx context.Context, d time.Duration) error {
	if n.Syncer == nil {
		return nil
	}
	return n.Syncer.SyncWithin(ctx, d)
}

// Open starts the embedded server (nats.url empty) or connects to the
// external cluster, then creates or updates the three streams.
func Open(ctx context.Context, c *config.Config) (*NATS, error) {
	return OpenWith(ctx, c, EmbedOptions{})
}

// EmbedOptions change the embedded server for benchmarks' baselines.
type EmbedOptions struct {
	PerWriteSync bool // durability fsync syncs every write in the server (SyncAlways), not by group
	ListenTCP    bool // the server listens on a loopback port (TCPURL) besides the in-process connection
}

func OpenWith(ctx context.Context, c *config.Config, eo EmbedOptions) (*NATS, error) {
	n := &NATS{closed: make(chan struct{}), embed: eo}
	var err error
	if c.NATS.URL == "" {
		err = n.startEmbedded(c)
	} else {
		err = n.connectExternal(c)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	if n.JetStream, err = jetstream.New(n.Conn); err != nil {
		n.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	if problems := c.FitPayload(n.MaxPayload(), c.NATS.URL == ""); len(problems) > 0 {
		n.Close()
		return nil, config.NewError(c.File(), problems)
	}
	if err := n.EnsureStreams(ctx, c); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *NATS) startEmbedded(c *config.Config) error {
	opts := &server.Options{
		ServerName: embeddedServerName,
		JetStream:  true,
		StoreDir:   filepath.Join(c.DataDir, "jetstream"),
		DontListen: true, // no network port: the broker connects in process
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: embeddedMaxPayload(c),
	}
	opts.MaxPending = max(64<<20, 2*int64(opts.MaxPayload)) // a client's outbound buffer holds two of the largest
	if n.embed.ListenTCP {
		opts.DontListen, opts.Host, opts.Port = false, "127.0.0.1", -1
	}
	if c.NATS.Durability == "fsync" && !n.embed.PerWriteSync {
		if err := os.MkdirAll(opts.StoreDir, 0o750); err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		var err error
		if n.Syncer, err = storeSyncer(opts.StoreDir); err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
	}
	// Without a group syncer, the server syncs every write: a PubAck then
	// means on disk, at one disk sync per message.
	opts.SyncAlways = c.NATS.Durability == "fsync" && n.Syncer == nil
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	n.server, n.storeDir = ns, opts.StoreDir
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("embedded nats: not ready after 10s")
	}
	n.Conn, err = nats.Connect("", nats.InProcessServer(ns), nats.Name("hl7broker"), n.onClosed())
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	return nil
}

// connectExternal connects to nats.url; extra options come last and win.
func (n *NATS) connectExternal(c *config.Config, extra ...nats.Option) error {
	opts := []nats.Option{nats.Name("hl7broker"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), n.onClosed()}
	if c.NATS.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.NATS.Creds))
	}
	if t := c.NATS.TLS; t.CAFile != "" {
		opts = append(opts, nats.RootCAs(t.CAFile))
	}
	if t := c.NATS.TLS; t.CertFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	opts = append(opts, extra...)
	var err error
	n.Conn, err = nats.Connect(strings.ReplaceAll(c.NATS.URL, " ", ""), opts...)
	if err != nil {
		return fmt.Errorf("nats %s: %w", secret.URL(c.NATS.URL), err)
	}
	return nil
}

// blocksOf4MB is a per-subject limit no subject reaches. It is there for
// its side effect: a stream with no limit on bytes or messages gets 8 MB
// blocks, one with a per-subject limit 4 MB blocks (nats-server's
// autoTuneFileStorageBlockSize, as for a key-value bucket). The server
// keeps each stream's newest block in memory while it is written and
// reads a whole block back for a consumer behind it, so under a
// sustained load the busy streams hold 32 MB of block buffers instead of
// 48 MB, at the same rate (docs/benchmarks-log.md, 2026-12-07). With
// nats.history_max_bytes set, HL7_IN's size limit decides instead.
// TestBusyStreamsWrite4MBBlocks fails if a server release changes this.
const blocksOf4MB = 1 << 62

// EnsureStreams creates or updates HL7_IN (history, dedupe window),
// HL7_OUT (delivered copies purged by the janitor), HL7_DLQ (kept until
// removed or history.dlq_max_age), HL7_EVENTS and HL7_AUDIT, and the
// HL7_STATE bucket.
func (n *NATS) EnsureStreams(ctx context.Context, c *config.Config) error {
	maxBytes := c.NATS.HistoryMaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	streams := []jetstream.StreamConfig{
		{Name: wire.StreamIn, Subjects: []string{wire.SubjectIn + ".>"}, Retention: jetstream.LimitsPolicy, MaxAge: c.NATS.History,
			MaxBytes: maxBytes, MaxMsgsPerSubject: blocksOf4MB, Duplicates: n.InWindow(c), Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas},
		// Limits, not a work queue: delivered copies are purged by the
		// janitor (janitor.go says why). No age limit: an undelivered copy
		// waits as long as its destination is down.
		{Name: wire.StreamOut, Subjects: []string{wire.SubjectOut + ".>"}, Retention: jetstream.LimitsPolicy, MaxMsgsPerSubject: blocksOf4MB,
			Duplicates: min(c.NATS.DuplicateWindow, RouterHorizon), Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas},
		{Name: wire.StreamDLQ, Subjects: []string{wire.SubjectDLQ + ".>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: c.History.DLQMaxAge, Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas},
		// Journeys live as long as the messages they describe.
		{Name: wire.StreamEvents, Subjects: []string{wire.SubjectEvents, wire.SubjectEvents + ".>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: c.NATS.History, MaxMsgsPerSubject: blocksOf4MB, Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas},
		{Name: wire.StreamAudit, Subjects: []string{wire.SubjectAudit, wire.SubjectAudit + ".>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: cmp.Or(c.Admin.AuditAge, config.DefaultAuditAge), Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas},
	}
	for _, sc := range streams {
		have, err := n.JetStream.Stream(ctx, sc.Name)
		if err == nil && sc.Name == wire.StreamOut && have.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
			// A stream's retention cannot change: an HL7_OUT made by an
			// earlier version stays a work queue, and works as before.
			sc.Retention = jetstream.WorkQueuePolicy
		}
		if err == nil && sameStream(have.CachedInfo().Config, sc) {
			continue
		}
		if _, err := n.JetStream.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	kv := jetstream.KeyValueConfig{Bucket: wire.StateBucket, Storage: jetstream.FileStorage, Replicas: c.NATS.Replicas, History: 1}
	if have, err := n.JetStream.Stream(ctx, "KV_"+kv.Bucket); err == nil {
		if hc := have.CachedInfo().Config; hc.Storage == kv.Storage && hc.Replicas == max(kv.Replicas, 1) && hc.MaxMsgsPerSubject == int64(kv.History) {
			return nil
		}
	}
	if _, err := n.JetStream.CreateOrUpdateKeyValue(ctx, kv); err != nil {
		return fmt.Errorf("bucket %s: %w", wire.StateBucket, err)
	}
	return nil
}

// sameStream reports whether a stream's config already has every setting
// EnsureStreams gives it, so that a broker starting beside others (or
// again) leaves it alone. An update it did not need is not free: besides
// the work, nats-server (2.15) reads a stream's config without its lock
// while it makes a consumer, and another broker's update of that stream
// at that moment is a data race in the server.
func sameStream(have, want jetstream.StreamConfig) bool {
	maxBytes := want.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention && have.MaxAge == want.MaxAge &&
		have.MaxBytes == maxBytes && have.MaxMsgsPerSubject == cmp.Or(want.MaxMsgsPerSubject, -1) &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) && // 0: the server's default, whatever it made of it
		have.Storage == want.Storage && have.Replicas == max(want.Replicas, 1)
}

func (n *NATS) onClosed() nats.Option {
	return nats.ClosedHandler(func(*nats.Conn) { close(n.closed) })
}

// Close drains the connection (waiting up to 10 s) and stops the
// embedded server, if any.
func (n *NATS) Close() {
	if n.Conn != nil && !n.Conn.IsClosed() {
		if n.Conn.Status() != nats.CONNECTED {
			n.Conn.Close() // nothing to drain to
		} else if err := n.Conn.Drain(); err == nil {
			select {
			case <-n.closed:
			case <-time.After(10 * time.Second):
				n.Conn.Close()
			}
		} else {
			n.Conn.Close()
		}
	}
	if n.server != nil {
		n.server.Shutdown()
		n.server.WaitForShutdown()
	}
	if n.Syncer != nil {
		n.Syncer.Close()
	}
}

// PublishTimeout bounds one publish of a record the broker cannot lose (a
// copy, a dead letter, a flush after it): past it the caller retries
// rather than wait on a server that went away.
const PublishTimeout = 10 * time.Second
