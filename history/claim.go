package history

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClaimed: another replay or purge has this dead letter; it does the
// work, once.
var ErrClaimed = errors.New("already claimed by another replay or purge")

// claimStale is how old a claim is when its owner is taken to have died
// (a broker killed mid-replay): a later replay may take it over. A claim
// is held for one letter's replay: a publish and a flush, seconds at most.
const claimStale = 2 * time.Minute

type claim struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// claimDeadLetter makes this replay or purge the only one to act on
// dead letter id, until release is called. Two at the same moment: one
// wins, the other gets ErrClaimed naming who has it.
func (o *Ops) claimDeadLetter(ctx context.Context, id uint64, by string) (release func(), err error) {
	kv, err := o.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return nil, err
	}
	key := wire.DLQClaimKey(id)
	v, _ := json.Marshal(claim{By: by, At: time.Now().UTC()})
	// Released by purging the key's subject from the bucket's stream: no
	// marker is left behind (a KV purge leaves one a letter, for ever).
	release = func() {
		if st, err := o.JetStream.Stream(context.WithoutCancel(ctx), "KV_"+wire.StateBucket); err == nil {
			_ = st.Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject("$KV."+wire.StateBucket+"."+key))
		}
	}
	if _, err = kv.Create(ctx, key, v); err == nil {
		return release, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, err
	}
	held, gerr := kv.Get(ctx, key)
	if gerr != nil {
		if errors.Is(gerr, jetstream.ErrKeyNotFound) { // released meanwhile (or purged: a deleted key)
			if _, err := kv.Create(ctx, key, v); err == nil {
				return release, nil
			}
		}
		return nil, ErrClaimed
	}
	var c claim
	_ = json.Unmarshal(held.Value(), &c)
	if time.Since(c.At) > claimStale { // its owner died: take it over, if no one else does first
		if _, err := kv.Update(ctx, key, v, held.Revision()); err == nil {
			return release, nil
		}
		return nil, ErrClaimed
	}
	return nil, fmt.Errorf("%w (%s, at %s)", ErrClaimed, cmp.Or(c.By, "someone"), c.At.Format(time.RFC3339))
}

// inReceivedOrder sorts dead letters by the message each holds, in the
// order the broker received them (then by when they were dead-lettered),
// so a replay never sends a discharge before its admit. A letter the
// index does not know keeps its place after those it knows.
func (o *Ops) inReceivedOrder(ctx context.Context, ids []uint64) []uint64 {
	type letter struct{ id, msg uint64 }
	ls := make([]letter, len(ids))
	for i, id := range ids {
		ls[i] = letter{id: id, msg: ^uint64(0)}
		if d, err := o.Index.DeadLetterByID(ctx, id); err == nil {
			ls[i].msg, _ = strconv.ParseUint(d.MessageID, 10, 64)
		}
	}
	slices.SortStableFunc(ls, func(a, b letter) int { return cmp.Or(cmp.Compare(a.msg, b.msg), cmp.Compare(a.id, b.id)) })
	out := make([]uint64, len(ls))
	for i, l := range ls {
		out[i] = l.id
	}
	return out
}
