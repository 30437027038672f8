package broker

import (
	"context"
	"fmt"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/store"
)

// sourceRun is one running source other than an MLLP listener (a part's
// value).
type sourceRun struct {
	// problem, if set, says what is wrong with it now ("" when nothing).
	problem func() string
}

// sourceParts are cfg's sources.
func (b *Broker) sourceParts(cfg *config.Config) []part {
	var parts []part
	for _, s := range cfg.Sources {
		parts = append(parts, b.sourcePart(cfg, s))
	}
	return parts
}

// sourcePart makes source s of cfg when it starts; stopping it leaves a file
// being read where it is, read again (after what was stored) on the next
// start.
func (b *Broker) sourcePart(cfg *config.Config, s config.SourceConfig) part {
	return part{name: "source:" + s.Name, config: sourceConfig{s, cfg.SourceScriptDigest(s)}, start: func() (func(context.Context) error, func(context.Context) error, any, error) {
		// One flush per file or per request, acknowledged after it (Sync).
		committer := b.store.Committer(b.nats.BatchCommitter(cfg.NATS.StoreTimeout))
		in := ingest.New(s.Listener(), committer, b.log)
		in.Metrics, in.Reuse, in.Events, in.Recent = b.metrics.ingest(), b.reuse, b.events, b.recent
		var err error
		if in.Profile, err = cfg.LoadProfile(s.Profile); err != nil {
			return nil, nil, nil, fmt.Errorf("source %s: profile: %w", s.Name, err)
		}
		in.Rules = cfg.SiteRules(s.Name)
		in.Charset = &ingest.CharsetCheck{Configured: s.Charset, Warnings: b.metrics.files.CharsetWarnings}
		if b.index != nil {
			in.SearchKeys = b.index.KeyPaths()
		}
		var builder *ingest.Builder
		if s.Script != "" || s.ScriptFile != "" {
			sc, err := cfg.SourceBuilder(s)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("source %s: script: %w", s.Name, err)
			}
			builder = &ingest.Builder{Format: s.Format, Script: sc}
		}
		src, err := ingest.NewSource(s, ingest.SourceEnv{Ingest: in, Log: b.log, Sync: b.nats.Sync, Files: b.metrics.files,
			LastPlace: func(ctx context.Context) (store.FilePlace, bool, error) { return b.nats.LastFilePlace(ctx, s.Name) },
			Token:     cfg.SourceToken, Builder: builder, Rows: b.nats})
		if err != nil {
			return nil, nil, nil, err
		}
		run := &sourceRun{}
		if t, ok := src.(ingest.Troubled); ok {
			run.problem = t.Problem
		}
		return src.Run, nil, run, nil
	}}
}

// sourceConfig is what a source runs with: its config, and the digest of
// what its script runs with (a script file edited restarts it).
type sourceConfig struct {
	s      config.SourceConfig
	script string
}
