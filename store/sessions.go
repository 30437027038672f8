package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hl7broker/hl7broker/wire"
)

// SessionKV keeps the console's sessions in HL7_STATE (admin.SessionStore):
// they survive a restart and every broker of a cluster sees them. Keys
// are hashes of session ids.
type SessionKV struct {
	JetStream jetstream.JetStream
}

func (s SessionKV) kv(ctx context.Context) (jetstream.KeyValue, error) {
	return s.JetStream.KeyValue(ctx, wire.StateBucket)
}

// PutSession writes a session.
func (s SessionKV) PutSession(ctx context.Context, key string, rec wire.Session) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, wire.SessionKey(key), b)
	return err
}

// GetSession reads a session; false when there is none.
func (s SessionKV) GetSession(ctx context.Context, key string) (wire.Session, bool, error) {
	var rec wire.Session
	kv, err := s.kv(ctx)
	if err != nil {
		return rec, false, err
	}
	e, err := kv.Get(ctx, wire.SessionKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	} else if err != nil {
		return rec, false, err
	}
	return rec, true, json.Unmarshal(e.Value(), &rec)
}

// DeleteSession removes a session (signed out, expired).
func (s SessionKV) DeleteSession(ctx context.Context, key string) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	err = kv.Purge(ctx, wire.SessionKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Sessions lists every session kept, by key.
func (s SessionKV) Sessions(ctx context.Context) (map[string]wire.Session, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeysFiltered(ctx, wire.SessionPrefix+">")
	if err != nil {
		return nil, err
	}
	out := map[string]wire.Session{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var rec wire.Session
		if json.Unmarshal(e.Value(), &rec) == nil {
			out[strings.TrimPrefix(k, wire.SessionPrefix)] = rec
		}
	}
	return out, nil
}
