package store

import (
	"context"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// QueueDepth counts a destination's messages in HL7_OUT not yet delivered
// (pending or in delivery), over its partitions too (the consumers of
// hl7.out.<dest> and hl7.out.<dest>.<n>); -1 if unknown. Delivered copies
// the janitor has not purged yet are not counted.
func QueueDepth(js jetstream.JetStream, dest string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.StreamOut)
	if err != nil {
		return -1
	}
	base := wire.OutSubject(dest)
	var n uint64
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		if f := info.Config.FilterSubject; f == base || strings.HasPrefix(f, base+".") {
			n += info.NumPending + uint64(info.NumAckPending)
		}
	}
	if list.Err() != nil {
		return -1
	}
	return float64(n)
}

// OldestWaiting is when the oldest copy not yet delivered to dest was
// queued (over its partitions); ok false when none waits or it is unknown.
func OldestWaiting(ctx context.Context, js jetstream.JetStream, dest string) (at time.Time, ok bool) {
	s, err := js.Stream(ctx, wire.StreamOut)
	if err != nil {
		return time.Time{}, false
	}
	base := wire.OutSubject(dest)
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		f := info.Config.FilterSubject
		if f != base && !strings.HasPrefix(f, base+".") || info.NumPending+uint64(info.NumAckPending) == 0 {
			continue
		}
		m, err := s.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(f))
		if err != nil {
			continue
		}
		if !ok || m.Time.Before(at) {
			at, ok = m.Time, true
		}
	}
	return at, ok
}

// OldestUnrouted is how long the oldest input stored in HL7_IN has waited
// for the router (handed out but not acknowledged, or not yet handed
// out); 0 when none waits or it is unknown.
func OldestUnrouted(ctx context.Context, js jetstream.JetStream) time.Duration {
	c, err := js.Consumer(ctx, wire.StreamIn, wire.RouterConsumer)
	if err != nil {
		return 0
	}
	info, err := c.Info(ctx)
	if err != nil || info.NumPending+uint64(info.NumAckPending) == 0 {
		return 0
	}
	s, err := js.Stream(ctx, wire.StreamIn)
	if err != nil {
		return 0
	}
	m, err := s.GetMsg(ctx, info.AckFloor.Stream+1)
	if err != nil {
		// Purged or deleted (history's age limit): the next one on.
		if m, err = s.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(wire.SubjectIn+".>")); err != nil {
			return 0
		}
	}
	return max(0, time.Since(m.Time))
}

// DeadLettersByDestination counts what HL7_DLQ holds now, by destination
// (transform failures under their own name); nil when unknown.
func DeadLettersByDestination(ctx context.Context, js jetstream.JetStream) map[string]uint64 {
	s, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(wire.SubjectDLQ+".>"))
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for subject, n := range info.State.Subjects {
		dest, _, _ := strings.Cut(strings.TrimPrefix(subject, wire.SubjectDLQ+"."), ".")
		out[dest] += n
	}
	return out
}
