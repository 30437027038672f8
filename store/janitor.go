package store

import (
	"context"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// HL7_OUT keeps messages by limits, not as a work queue, and the janitor
// removes what was delivered.
//
// A work queue removes each message when it is acknowledged; when a
// queue runs empty, which at light load is after every message, the store
// replaces its block file: one file created and one deleted per message.
// Under durability fsync each of those costs a journal commit in the next
// flush, which made a lone sender's ACK about 3× slower (docs/BENCHMARKS.md).
//
// Instead, every interval the janitor notes each HL7_OUT consumer's ack
// floor (everything at or below it is acknowledged, or dead-lettered), and
// purges each consumer's subject up to the floor it noted at least one
// duplicate window ago. So a delivered copy stays for the duplicate
// window: when a router routes an input again after a crash, the copy's
// Msg-Id is still known and the copy is not queued twice. Purges are
// idempotent, so every broker instance runs a janitor.
type Janitor struct {
	js       jetstream.JetStream
	window   time.Duration // keep delivered copies this long
	log      zerolog.Logger
	noted    []floorNote       // oldest first
	purgedTo map[string]uint64 // subject -> last floor purged up to
}

// floorNote is every HL7_OUT consumer's ack floor at one time, by
// filter subject.
type floorNote struct {
	at     time.Time
	floors map[string]uint64
}

// janitorInterval is how often the janitor looks: a quarter of the window,
// between 1 and 30 s.
func janitorInterval(window time.Duration) time.Duration {
	return min(max(window/4, time.Second), 30*time.Second)
}

func NewJanitor(js jetstream.JetStream, window time.Duration, log zerolog.Logger) *Janitor {
	return &Janitor{js: js, window: window, log: log, purgedTo: map[string]uint64{}}
}

// run purges until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(janitorInterval(j.window))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := j.tick(ctx, now); err != nil && ctx.Err() == nil {
				j.log.Warn().Str("component", "janitor").Str("reason", err.Error()).Msg("delivered copies not purged this time; will retry")
			}
		}
	}
}

// tick notes the floors now and purges up to those noted a window ago.
func (j *Janitor) tick(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := j.js.Stream(ctx, wire.StreamOut)
	if err != nil {
		return err
	}
	floors := map[string]uint64{}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		if f := info.Config.FilterSubject; f != "" && !strings.ContainsAny(f, "*>") {
			floors[f] = info.AckFloor.Stream
		}
	}
	if err := list.Err(); err != nil {
		return err
	}
	j.noted = append(j.noted, floorNote{at: now, floors: floors})
	due := -1 // the newest note at least a window old
	for i, n := range j.noted {
		if now.Sub(n.at) >= j.window {
			due = i
		}
	}
	if due < 0 {
		return nil
	}
	note := j.noted[due]
	j.noted = j.noted[due+1:]
	for subject, floor := range note.floors {
		if floor <= j.purgedTo[subject] {
			continue
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(floor+1)); err != nil {
			return err
		}
		j.purgedTo[subject] = floor
	}
	return nil
}
