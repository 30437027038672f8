package ingest

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/store"
)

// Source is a running source of messages: Run takes messages in until ctx
// ends, storing each through its Ingest before its sender is answered. An
// error ends it; its supervisor starts it again.
type Source interface {
	Run(ctx context.Context) error
}

// Troubled is a source that can say what is wrong with it now (files it
// cannot move on), for /readyz; "" when nothing is.
type Troubled interface {
	Problem() string
}

// SourceType is one kind of source whose own keys are the struct T (its
// mapstructure tags; the keys every source has are config.SourceConfig's).
// A kind is one file: T, a SourceType registered by RegisterSource in
// that file's init, and the Source it makes.
type SourceType[T any] struct {
	Name string
	// Check adds a problem for anything wrong with its keys (o) on source
	// s, at key (sources[2]); enum tags are checked without it.
	Check func(o *T, s config.SourceConfig, key string, c *config.Checker)
	// Defaults fills its keys left out.
	Defaults func(o *T, s *config.SourceConfig)
	// Warnings are what a valid source of it does that is risky.
	Warnings func(o *T, key string) []config.Problem
	// New makes the source s, already validated.
	New func(o *T, s config.SourceConfig, env SourceEnv) (Source, error)
	// Documents: it takes format json and xml, building each document's
	// message with env.Builder.
	Documents bool
	// Rows: it builds a message of each row it reads with its script
	// (env.Builder), which it needs.
	Rows bool
}

// SourceEnv is what a SourceType's New gets from the broker besides the
// source's config.
type SourceEnv struct {
	Ingest *Ingest // stores each message; its committer flushes per file or request
	Log    zerolog.Logger
	// Sync makes what was stored durable: a source answers its sender (or
	// moves its file on) after it.
	Sync func(ctx context.Context) error
	// Files counts what file sources read.
	Files *FileMetrics
	// LastPlace says where a file source stopped: the last message it
	// stored, so that a file read again resumes after it.
	LastPlace func(ctx context.Context) (store.FilePlace, bool, error)
	// Token reads a token the config names (never printed).
	Token func(config.SourceTokenConfig) (string, error)
	// Builder, for a source of format json or xml, makes each document's
	// HL7 v2 message; nil for a source of HL7 v2.
	Builder *Builder
	// Rows keeps where a database source stopped.
	Rows RowStore
}

// RowStore keeps where a database source stopped (store.NATS).
type RowStore interface {
	RowPlace(ctx context.Context, source string) (string, error)
	KeepRow(ctx context.Context, source, place string) error
}

var (
	sourceMakersMu sync.RWMutex
	sourceMakers   = map[string]func(config.SourceConfig, SourceEnv) (Source, error){}
)

// RegisterSource makes a kind of source known to the config (its keys,
// checks, defaults and warnings) and to NewSource. It panics if the name
// is taken.
func RegisterSource[T any](t SourceType[T]) {
	reg := config.SourceType{Name: t.Name, Options: reflect.TypeFor[T](), Documents: t.Documents, Rows: t.Rows}
	if t.Check != nil {
		reg.Check = func(s config.SourceConfig, key string, c *config.Checker) {
			t.Check(config.SourceOptionsOf[T](s), s, key, c)
		}
	}
	if t.Defaults != nil {
		reg.Defaults = func(s *config.SourceConfig) { t.Defaults(config.SourceOptionsOf[T](*s), s) }
	}
	if t.Warnings != nil {
		reg.Warnings = func(s config.SourceConfig, key string) []config.Problem {
			return t.Warnings(config.SourceOptionsOf[T](s), key)
		}
	}
	config.RegisterSourceType(reg)
	sourceMakersMu.Lock()
	defer sourceMakersMu.Unlock()
	sourceMakers[t.Name] = func(s config.SourceConfig, env SourceEnv) (Source, error) {
		return t.New(config.SourceOptionsOf[T](s), s, env)
	}
}

// NewSource makes source s by its type.
func NewSource(s config.SourceConfig, env SourceEnv) (Source, error) {
	sourceMakersMu.RLock()
	mk := sourceMakers[s.Type]
	sourceMakersMu.RUnlock()
	if mk == nil {
		return nil, fmt.Errorf("source %s: no source type %q", s.Name, s.Type)
	}
	return mk(s, env)
}
