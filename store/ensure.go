package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureConsumer creates or updates the durable consumer cfg describes.
// A consumer's ack policy and where it starts cannot be changed in place.
// Where it starts is kept from the stored consumer. When the stored
// consumer has another ack policy (a destination switched between
// ordered and parallel delivery, or a queue made by an older hl7broker),
// it is deleted and made again from its ack floor: nothing it had not
// acknowledged is skipped, and what it had handed out but not
// acknowledged is handed out again (at least once, as after a crash).
// remade says it was, and how many messages it had handed out without
// their ack, for the caller to log.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (cons jetstream.Consumer, remade bool, unacked int, err error) {
	cons, err = js.Consumer(ctx, stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return cons, false, 0, err
	} else if err != nil {
		return nil, false, 0, err
	}
	info := cons.CachedInfo()
	if info.Config.AckPolicy == cfg.AckPolicy {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = info.Config.DeliverPolicy, info.Config.OptStartSeq, info.Config.OptStartTime
		cons, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return cons, false, 0, err
	}
	if err := js.DeleteConsumer(ctx, stream, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, false, 0, fmt.Errorf("re-create consumer %s for ack policy %s: %w", cfg.Durable, cfg.AckPolicy, err)
	}
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1, nil
	cons, err = createAfterDelete(ctx, js, stream, cfg)
	return cons, err == nil, info.NumAckPending, err
}

// createAfterDelete makes a consumer again under the name of one just
// deleted. The deleted consumer's state writer may still be renaming its
// last o.dat.tmp in the same folder, and the server then fails the create
// with a 500 ("rename .../o.dat.tmp: no such file or directory"); a few
// tries a little apart get past it. Any other error returns at once.
func createAfterDelete(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	wait := 20 * time.Millisecond
	for try := 1; ; try++ {
		cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
		var api *jetstream.APIError
		if err == nil || try == 5 || !errors.As(err, &api) || api.Code < 500 {
			return cons, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
