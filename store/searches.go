package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hl7broker/hl7broker/wire"
)

// SearchesKV keeps each person's saved searches in HL7_STATE
// (admin.SearchStore), one entry per person, under a hash of their name:
// every broker of a cluster sees them, and a restart keeps them.
type SearchesKV struct {
	JetStream jetstream.JetStream
}

// SavedSearches lists user's saved searches.
func (s SearchesKV) SavedSearches(ctx context.Context, user string) ([]wire.SavedSearch, error) {
	kv, err := s.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return nil, err
	}
	list, _, err := readSearches(ctx, kv, user)
	return list, err
}

func readSearches(ctx context.Context, kv jetstream.KeyValue, user string) ([]wire.SavedSearch, uint64, error) {
	e, err := kv.Get(ctx, wire.SearchesKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return []wire.SavedSearch{}, 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	var list []wire.SavedSearch
	if err := json.Unmarshal(e.Value(), &list); err != nil {
		return nil, 0, err
	}
	return list, e.Revision(), nil
}

// UpdateSavedSearches changes user's saved searches with change, which
// gets them as stored; an update that raced another is tried again on
// what that one stored.
func (s SearchesKV) UpdateSavedSearches(ctx context.Context, user string, change func([]wire.SavedSearch) ([]wire.SavedSearch, error)) error {
	kv, err := s.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		list, rev, err := readSearches(ctx, kv, user)
		if err != nil {
			return err
		}
		if list, err = change(list); err != nil {
			return err
		}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, wire.SearchesKey(user), b)
		} else {
			_, err = kv.Update(ctx, wire.SearchesKey(user), b, rev)
		}
		if err == nil || attempt == 9 || !(errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongSequence(err)) {
			return err
		}
	}
}

// isWrongSequence: an update whose expected revision was not the last
// (a single server's code, or a cluster's).
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
