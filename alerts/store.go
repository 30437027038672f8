package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// KV keeps alert state, silences and the lease in HL7_STATE, shared by
// a cluster's brokers and kept across restarts.
type KV struct {
	JetStream jetstream.JetStream
}

func (s KV) kv(ctx context.Context) (jetstream.KeyValue, error) {
	return s.JetStream.KeyValue(ctx, wire.StateBucket)
}

// LoadState is the saved alerts; none before the first save.
func (s KV) LoadState(ctx context.Context) ([]Alert, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, wire.AlertStateKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []Alert
	return out, json.Unmarshal(e.Value(), &out)
}

// SaveState replaces the saved alerts.
func (s KV) SaveState(ctx context.Context, alerts []Alert) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, wire.AlertStateKey, b)
	return err
}

// Silences are the silenced rules, by name (expired ones included).
func (s KV) Silences(ctx context.Context) (map[string]Silence, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]Silence{}
	for k := range keys.Keys() {
		rule, ok := strings.CutPrefix(k, wire.AlertSilenceKey(""))
		if !ok {
			continue
		}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // lifted meanwhile
		} else if err != nil {
			return nil, err
		}
		var si Silence
		if json.Unmarshal(e.Value(), &si) == nil {
			out[rule] = si
		}
	}
	return out, nil
}

// SetSilence silences rule until si.Until; nil lifts its silence.
func (s KV) SetSilence(ctx context.Context, rule string, si *Silence) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	if si == nil {
		if err := kv.Delete(ctx, wire.AlertSilenceKey(rule)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(si)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, wire.AlertSilenceKey(rule), b)
	return err
}

// lease is the lease's value: who holds it, until when.
type lease struct {
	ID    string    `json:"id"`
	Until time.Time `json:"until"`
}

// Lead takes the lease when no one holds it or it ran out, and renews it
// while id holds it; a compare-and-set on the key's revision makes sure
// two brokers racing for it cannot both win.
func (s KV) Lead(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return false, err
	}
	now := time.Now()
	b, _ := json.Marshal(lease{ID: id, Until: now.Add(ttl)})
	e, err := kv.Get(ctx, wire.AlertLeaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, err = kv.Create(ctx, wire.AlertLeaseKey, b)
		return err == nil, ignoreLost(err)
	} else if err != nil {
		return false, err
	}
	var held lease
	if json.Unmarshal(e.Value(), &held) == nil && held.ID != id && held.Until.After(now) {
		return false, nil
	}
	_, err = kv.Update(ctx, wire.AlertLeaseKey, b, e.Revision())
	return err == nil, ignoreLost(err)
}

// ignoreLost: losing a race for the lease is not an error.
func ignoreLost(err error) error {
	var api *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return nil
	}
	return err
}

// Shared is one broker's facts as it shared them.
type Shared struct {
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
	Facts Facts     `json:"facts"`
}

// ShareFacts saves what broker id sees, for the broker that evaluates.
func (s KV) ShareFacts(ctx context.Context, id string, f Facts) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(Shared{ID: id, At: f.Now, Facts: f})
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, wire.AlertFactsKey(id), b)
	return err
}

// forgetFactsAfter is when a broker's shared facts are deleted (a broker
// gone for good: each start has an id of its own).
const forgetFactsAfter = time.Hour

// ClusterFacts are the facts the other brokers shared at or after since.
// Facts older than forgetFactsAfter are deleted.
func (s KV) ClusterFacts(ctx context.Context, self string, since time.Time) ([]Shared, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeysFiltered(ctx, wire.AlertFactsPrefix+">")
	if err != nil {
		return nil, err
	}
	var out []Shared
	for k := range keys.Keys() {
		if k == wire.AlertFactsKey(self) {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var sh Shared
		if json.Unmarshal(e.Value(), &sh) != nil {
			continue
		}
		switch {
		case time.Since(sh.At) > forgetFactsAfter:
			_ = kv.Delete(ctx, k)
		case !sh.At.Before(since):
			out = append(out, sh)
		}
	}
	return out, nil
}
