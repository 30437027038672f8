package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Partitioning tells the router how a key-ordered destination splits its
// queue: by the value at Path into Partitions subjects.
type Partitioning struct {
	Path       hl7.Path
	Partitions int
}

// Table is what the router routes by. A reload replaces it whole.
type Table struct {
	Routes     []Route
	UnroutedTo string
	Partitions map[string]Partitioning // by destination; absent: one queue
}

// Table is the table in force; an empty one (everything unrouted) until
// SetTable.
func (r *Router) Table() *Table {
	if t := r.table.Load(); t != nil {
		return t
	}
	return &Table{}
}

// SetTable sets the routes, unrouted.to and partitions at once: before
// Run, and again at each reload. The next message is routed by t; the one
// being routed finishes by the old.
func (r *Router) SetTable(t *Table) { r.table.Store(t) }

// Router reads HL7_IN in stored order through a durable consumer, matches
// each message against every route, and publishes one copy per
// destination to HL7_OUT (hl7.out.<destination>[.<partition>]) with
// Nats-Msg-Id = input sequence + destination, so a redelivered input adds
// no duplicates. It acks the input only after every copy is stored. A
// message no route matches is logged as unrouted and, with the table's
// UnroutedTo, sent there; it stays in HL7_IN's history either way.
type Router struct {
	JetStream jetstream.JetStream
	Log       zerolog.Logger
	// Sync, if set, returns once what was published so far is on disk;
	// the router calls it before acking an input, so that an input is
	// never marked done while its copies could still be lost. It may
	// wait a little for a flush someone else begins (the broker's does).
	Sync func(context.Context) error
	// OnRouted, if set, is called after each input is acked, with the
	// destinations it went to (none: unrouted). For metrics and tests.
	OnRouted func(inSeq uint64, destinations []string)
	// OnMatched, if set, is called with the routes each input matched.
	OnMatched func(routes []string)
	// OnDeadLettered, if set, is called when the router itself sends a
	// message to the dead-letter queue (a transform failed or panicked, a
	// copy too large), with the route or "_router". For metrics.
	OnDeadLettered func(route string)
	// Events, if set, records what the router did with each input in its
	// journey.
	Events *store.EventLog
	// PinnedTTL is how long a router that stopped asking for inputs stays
	// the one routing (0: DefaultPinnedTTL). Routers of several broker
	// instances share one consumer in a pinned priority group: one routes,
	// in stored order; the others wait and take over this long after it
	// stops.
	PinnedTTL time.Duration

	parsed hl7.Message // the input being routed, parsed once for every route's condition
	table  atomic.Pointer[Table]

	// The fence (fence.go), used by Run's goroutine only: the sequence of
	// this router's fence record (0: none up), the pin it was raised for,
	// and whether a copy was refused because another router took over.
	fence    uint64
	fencePin string
	fenced   bool
	lastOut  uint64 // HL7_OUT's last sequence as this router last saw it
	// stored are copies already in HL7_OUT of inputs routed again
	// (recover): by Msg-Id, their HL7_OUT sequence. A copy found here is
	// not stored again, however long ago it was stored. Kept until the
	// next recover (at most MaxAckPending inputs' copies): a redelivery of
	// those inputs after a lost ack matches it too.
	stored map[string]storedCopy

	// testHookBeforeStore, set by tests, runs before each copy is stored.
	testHookBeforeStore func(inSeq uint64)
}

// routerLimits admit whatever a listener can: its limit goes up to 64 MiB.
var routerLimits = func() hl7.Limits {
	l := hl7.DefaultLimits
	l.MaxMessageBytes = 64 << 20
	return l
}()

// routerBatch is how many inputs the router holds at once. It routes
// them in stored order, then waits for one flush and acks them together.
const routerBatch = 256

// retryWait is how long the router waits before storing a copy again.
const retryWait = time.Second

// routerAckWait is how long an input handed to a router may stay
// unacknowledged before it is handed out again: after a crash, how long
// the inputs the dead router held stop the queue. (They are routed again
// at once by the next router, but the queue hands out nothing newer while
// they are pending.)
const routerAckWait = 10 * time.Second

// DefaultPinnedTTL: a standby router (or this one, restarted after a
// crash) takes over 5 s after the active one stops asking for inputs.
// The time to live restarts with each pull request, and an idle router
// renews its request only when the last one expires (also 5 s): with
// two routers, the pin could change hands at an expiry, or while the
// active router reconnected to another node, with inputs still in its
// hands. Brokers sharing a store use SharedPinnedTTL.
const DefaultPinnedTTL = 5 * time.Second

// SharedPinnedTTL is the router's pin's time to live where several broker
// instances share the store: three pull expiries, as for ordered queues.
const SharedPinnedTTL = 15 * time.Second

// Run routes until ctx ends. Inputs are taken in groups: whatever has
// arrived (up to routerBatch), routed one by one in stored order, then one
// Sync for the group, then one ack each. No timer: a lone input is routed
// at once. A copy that cannot be stored is retried in place, holding the
// line, so no later input overtakes it; inputs not acked when ctx ends are
// redelivered on the next start and their copies deduplicated.
func (r *Router) Run(ctx context.Context) error {
	cons, remade, unacked, err := store.EnsureConsumer(ctx, r.JetStream, wire.StreamIn, jetstream.ConsumerConfig{
		Durable: wire.RouterConsumer,
		// Cumulative: a group of inputs is acknowledged with one ack.
		AckPolicy:     jetstream.AckAllPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: routerBatch,
		// Short, so that inputs a crashed router held come back soon
		// (they hold up the queue until then); a group that takes longer
		// is kept in progress (store.KeepInProgress).
		AckWait: routerAckWait,
		// One active router across broker instances keeps the stored order.
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{wire.RouterGroup},
		PinnedTTL:      cmp.Or(r.PinnedTTL, DefaultPinnedTTL),
	})
	if err != nil {
		return fmt.Errorf("router consumer: %w", err)
	}
	if remade {
		r.Log.Info().Int("handed_out_again", unacked).
			Msg("router: its consumer was re-created from its ack floor for cumulative acks; inputs it had handed out without an ack are routed again (their copies deduplicated)")
	}
	// A standby (another router holds the pin) routes nothing now: it
	// recovers when it is first handed inputs (a gap from 0).
	var next uint64
	if holder, err := r.pinHolder(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	} else if holder == "" && r.raiseFence(ctx, "") == nil { // else: when first handed inputs
		if next, err = r.recover(ctx, cons); errors.Is(err, errFenced) {
			r.dropFenced()
			next = 0
		} else if err != nil {
			return fmt.Errorf("router: %w", err)
		}
	}
	// Never full: the server hands out at most MaxAckPending unacked inputs.
	inbox := make(chan jetstream.Msg, routerBatch)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case inbox <- msg:
		case <-ctx.Done(): // stopping: unacked, it is redelivered on the next start
		}
	}, slices.Concat(store.PullOptions, []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(routerBatch), jetstream.PullPriorityGroup(wire.RouterGroup)})...)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	var pinID string // this router's pin, from the last group it was handed
	defer func() {
		cc.Stop()
		store.WaitClosed(cc)
		// Stopping (a broker shutting down, say, in a rolling upgrade):
		// the standby router takes over at once, not after the pin's time
		// to live. Inputs of a group not acked yet are routed again by it
		// (their copies deduplicated).
		store.GiveUpPin(r.JetStream, wire.StreamIn, wire.RouterConsumer, wire.RouterGroup, pinID)
	}()
	group := make([]jetstream.Msg, 0, routerBatch)
	seqs := make([]uint64, 0, routerBatch) // group's HL7_IN sequences
	var ok bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			// The subscription ended by itself (its consumer vanished, as
			// when the server's JetStream restarts): return, to be
			// started again by whoever supervises the router.
			return errors.New("router: the consumer's subscription ended")
		case first := <-inbox:
			group = append(group[:0], first)
		more:
			for len(group) < routerBatch {
				select {
				case m := <-inbox:
					group = append(group, m)
				default:
					break more
				}
			}
			if id := group[len(group)-1].Headers().Get(store.PinIDHeader); id != "" {
				pinID = id
			}
			// Handed inputs under a new pin: fence out whoever routed
			// before. Until the fence is up, nothing is routed (the line
			// is held, as when a copy cannot be stored).
			for attempt := 1; r.fence == 0 || pinID != r.fencePin; attempt++ {
				err := r.raiseFence(ctx, pinID)
				if err == nil {
					break
				}
				r.Log.Error().Int("attempt", attempt).Str("reason", err.Error()).Msg("router: its fence could not be put up; retrying")
				if !r.wait(ctx, group) {
					return nil
				}
			}
			// Route the group in runs without a gap. An input past next
			// means inputs before it were given to another router (or to
			// this one before a reconnect) and are not all acked: a router
			// that died or stalled holding them. Route them first, in
			// order; their redelivery is deduplicated. The gap may come
			// anywhere in a group: after redeliveries of older inputs, say.
			seqs = seqs[:0]
			for _, m := range group {
				seqs = append(seqs, streamSeq(m))
			}
			for i := 0; i < len(group); {
				if seqs[i] > next {
					if next, ok = r.takeOver(ctx, cons); !ok {
						return nil
					}
					if r.fenced {
						break
					}
				}
				k, end := runWithoutGap(seqs[i:], next)
				run := group[i : i+k]
				stop := store.KeepInProgress(run, routerAckWait/3)
				r.routeGroup(ctx, run)
				stop()
				if ctx.Err() != nil {
					return nil
				}
				if r.fenced {
					break
				}
				next, i = max(next, end), i+k
			}
			if r.fenced { // the rest of the group is the pin holder's now
				r.dropFenced()
				next = 0
			}
		}
	}
}

// runWithoutGap is how many inputs from the start of a group (by their
// sequences) follow on from next with no input missing between them (at
// least one), and the sequence after the last of them.
func runWithoutGap(seqs []uint64, next uint64) (int, uint64) {
	end, k := next, 0
	for ; k < len(seqs); k++ {
		seq := seqs[k]
		if seq > end && k > 0 {
			break
		}
		end = max(end, seq+1)
	}
	return k, end
}

// takeOver runs recover until it succeeds (false when ctx ends), holding
// the line: no newer input is routed before the held ones.
func (r *Router) takeOver(ctx context.Context, cons jetstream.Consumer) (uint64, bool) {
	for {
		next, err := r.recover(ctx, cons)
		if err == nil || errors.Is(err, errFenced) {
			return next, true // fenced: r.fenced says so
		}
		r.Log.Error().Str("reason", err.Error()).Msg("router: taking over from another router failed; retrying")
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(retryWait):
		}
	}
}

// streamSeq is an input's HL7_IN sequence number (0 if unknown).
func streamSeq(m jetstream.Msg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// recover routes again, in stored order, every input an earlier run was
// given but did not ack (between the consumer's ack floor and its last
// delivery), before any newer input. Without it, those inputs would come
// back only when their ack wait ran out, after newer ones were routed: out
// of order. Copies already stored are deduplicated by their Msg-Id; when
// the inputs are redelivered later they are routed (deduplicated) and
// acked as usual. Another router active meanwhile is harmless: each
// routes in order and the first copy stored wins.
func (r *Router) recover(ctx context.Context, cons jetstream.Consumer) (next uint64, err error) {
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	floor, last := info.AckFloor.Stream, info.Delivered.Stream
	if last <= floor {
		return last + 1, nil
	}
	stream, err := r.JetStream.Stream(ctx, wire.StreamIn)
	if err != nil {
		return 0, err
	}
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(retryWait):
			return true
		}
	}
	if err := r.findStored(ctx, floor, last); err != nil {
		return 0, err
	}
	n := 0
	for seq := floor + 1; seq <= last; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by retention
		} else if err != nil {
			return 0, fmt.Errorf("read input %d: %w", seq, err)
		}
		if _, ok := r.routeInput(ctx, seq, m.Header, m.Data, wait); !ok {
			if r.fenced {
				return 0, errFenced
			}
			return 0, ctx.Err() // stopping
		}
		n++
	}
	if err := r.sync(ctx); err != nil {
		return 0, err
	}
	r.Log.Info().Uint64("from_seq", floor+1).Uint64("to_seq", last).Int("inputs", n).
		Msg("router: routed again, in order, the inputs an earlier run or another router left unacknowledged")
	return last + 1, nil
}

// routed is one input of a group after its copies were stored.
type routed struct {
	msg  jetstream.Msg
	seq  uint64
	sent []string
}

// routeGroup routes each input in order, then makes the copies durable
// and acks the inputs. It returns early only when ctx ends, leaving the
// rest unacked.
func (r *Router) routeGroup(ctx context.Context, group []jetstream.Msg) {
	done := make([]routed, 0, len(group))
	for _, msg := range group {
		rt, ok := r.route(ctx, msg, group)
		if !ok {
			return
		}
		if rt.msg != nil {
			done = append(done, rt)
		}
	}
	for attempt := 1; ; attempt++ {
		err := r.sync(ctx)
		if err == nil {
			break
		}
		r.Log.Error().Int("inputs", len(done)).Int("attempt", attempt).Str("reason", err.Error()).Msg("router: copies not confirmed on disk; retrying")
		if !r.wait(ctx, group) {
			return
		}
	}
	// One ack for the group: the consumer's acks are cumulative (AckAll),
	// and every input up to the group's last was routed, by this group or
	// before it (recover routes what another run left first).
	var last routed
	for _, rt := range done {
		if rt.seq >= last.seq {
			last = rt
		}
	}
	if last.msg == nil {
		return
	}
	if err := last.msg.Ack(); err != nil {
		r.Log.Warn().Uint64("in_seq", last.seq).Int("inputs", len(done)).Err(err).Msg("router: ack failed; the inputs will be redelivered and deduplicated")
		return
	}
	if r.OnRouted != nil {
		for _, rt := range done {
			r.OnRouted(rt.seq, rt.sent)
		}
	}
}

// wait waits retryWait, telling JetStream the group's inputs are still
// being worked on; false if ctx ended.
func (r *Router) wait(ctx context.Context, group []jetstream.Msg) bool {
	for _, m := range group {
		_ = m.InProgress()
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(retryWait):
		return true
	}
}

// route routes one delivered input of a group.
func (r *Router) route(ctx context.Context, msg jetstream.Msg, group []jetstream.Msg) (rt routed, ok bool) {
	meta, err := msg.Metadata()
	if err != nil {
		r.Log.Error().Err(err).Msg("router: message without metadata; terminated")
		_ = msg.Term()
		return routed{}, true
	}
	sent, ok := r.routeInput(ctx, meta.Sequence.Stream, msg.Headers(), msg.Data(), func() bool { return r.wait(ctx, group) })
	if !ok {
		return routed{}, false
	}
	return routed{msg: msg, seq: meta.Sequence.Stream, sent: sent}, true
}

// routeInput stores input seq's copies: one per destination of the routes
// it matches, or for unrouted.to; a transform that fails sends it to the
// dead-letter queue. A copy that cannot be stored is retried after wait
// (which returns false when ctx ended). ok is false only when ctx ended.
func (r *Router) routeInput(ctx context.Context, seq uint64, h nats.Header, data []byte, wait func() bool) (sent []string, ok bool) {
	listener := h.Get(wire.HeaderListener)
	tctx, span := tracing.Start(tracing.Extract(ctx, h), tracing.SpanRoute, tracing.AttrListener.String(listener),
		tracing.AttrInSeq.Int64(int64(seq)))
	if tracing.On() {
		span.SetAttributes(tracing.AttrType.String(h.Get(wire.HeaderType)+"^"+h.Get(wire.HeaderEvent)), tracing.ControlID(h.Get(wire.HeaderControlID)))
		defer func() {
			span.SetAttributes(tracing.AttrRoutes.StringSlice(sent))
			span.End()
		}()
	}
	in := &input{r: r, ctx: ctx, tctx: tctx, seq: seq, h: h, data: data, wait: wait, listener: listener}
	return in.route()
}

// input is one input being routed: what its copies and dead letters are
// stored with.
type input struct {
	r        *Router
	ctx      context.Context // the router's: its end stops the routing
	tctx     context.Context // with the route's span, for the copies'
	seq      uint64          // its HL7_IN sequence
	h        nats.Header
	data     []byte
	wait     func() bool // waits before a retry; false when the router stops
	listener string
	msgLog   *zerolog.Logger
	outSeq   uint64 // the last record's sequence in its stream
}

// log is a logger that names the message, built only when something is
// logged about it (most messages log nothing).
func (in *input) log() *zerolog.Logger {
	if in.msgLog == nil {
		h := in.h
		l := in.r.Log.With().Uint64("in_seq", in.seq).Str("control_id", h.Get(wire.HeaderControlID)).
			Str("type", h.Get(wire.HeaderType)+"^"+h.Get(wire.HeaderEvent)).Str("listener", in.listener).Logger()
		in.msgLog = &l
	}
	return in.msgLog
}

// store publishes one copy (or dead letter), retrying until it is
// stored; it returns stopped when the router stops (or is fenced), tooBig
// when the record can never be stored.
func (in *input) store(extra nats.Header, dest, route string, data []byte, subject string) (stopped, tooBig bool) {
	r := in.r
	out := &nats.Msg{Subject: subject, Data: data, Header: wire.CopyHeader(in.h, route, in.seq)}
	for k, v := range extra {
		out.Header[k] = v
	}
	tracing.Inject(in.tctx, out.Header) // each attempt's span is a child of this route's
	id := wire.CopyID(in.seq, dest)
	if c, ok := r.stored[id]; ok { // stored before a crash or a takeover
		in.outSeq = c.outSeq
		return false, false
	}
	fenced := strings.HasPrefix(subject, wire.SubjectOut+".") // a copy in HL7_OUT, behind the fence (a dead letter is in another stream)
	for attempt := 1; ; attempt++ {
		if r.testHookBeforeStore != nil {
			r.testHookBeforeStore(in.seq)
		}
		opts := [2]jetstream.PublishOpt{jetstream.WithMsgID(id)}
		n := 1
		if fenced {
			opts[1], n = jetstream.WithExpectLastSequence(r.lastOut), 2
		}
		pctx, cancel := context.WithTimeout(in.ctx, store.PublishTimeout)
		ack, err := r.JetStream.PublishMsg(pctx, out, opts[:n]...)
		cancel()
		if fenced && err != nil && fenceRefused(err) {
			if ferr := r.afterFenceRefused(in.ctx); errors.Is(ferr, errFenced) {
				r.fenced = true
				return true, false
			} else if ferr == nil {
				continue // still the pin's holder, or a replay was stored meanwhile
			}
		}
		if err == nil {
			if fenced && !ack.Duplicate {
				r.lastOut = ack.Sequence
			}
			in.outSeq = ack.Sequence
			if r.Log.GetLevel() <= zerolog.DebugLevel {
				in.log().Debug().Str("destination", dest).Str("route", route).Msg("routed")
			}
			return false, false
		}
		if in.ctx.Err() != nil {
			return true, false
		}
		if store.IsTooLarge(err) {
			return false, true
		}
		in.log().Error().Str("destination", dest).Int("attempt", attempt).Str("reason", err.Error()).Msg("router: storing the copy failed; retrying")
		if !in.wait() {
			return true, false
		}
	}
}

// deadLetter stores the input in the dead-letter queue, for route, with
// reason; false when the router stopped first.
func (in *input) deadLetter(route, reason string) bool {
	r := in.r
	in.log().Error().Str("route", route).Str("reason", reason).Msg("message sent to the dead-letter queue")
	why := nats.Header{}
	wire.Letter{Reason: reason, At: time.Now()}.Mark(why)
	stopped, tooBig := in.store(why, wire.TransformDLQ+":"+route, route, in.data, wire.DLQSubject(wire.TransformDLQ))
	if tooBig { // the input itself fit in HL7_IN; only the DLQ headers can tip it over
		in.log().Error().Str("route", route).Msg("the dead-letter copy is too large to store; the message stays in HL7_IN's history only")
	}
	if !stopped && !tooBig {
		r.Events.Record(wire.Event{Kind: wire.EventDeadLettered, Message: in.seq, Destination: wire.TransformDLQ, Reason: reason, DLQ: in.outSeq})
	}
	if r.OnDeadLettered != nil && !stopped {
		r.OnDeadLettered(route)
	}
	return !stopped
}

// route evaluates the routes and stores each copy and dead letter, then
// records the input's routed event.
func (in *input) route() (sent []string, ok bool) {
	r, data, seq := in.r, in.data, in.seq
	// Stored messages were parsed at ingest; this can fail only on a
	// message stored by something else, or limits changed since.
	if err := r.parsed.ParseWith(data, routerLimits); err != nil {
		if !in.deadLetter("_router", "the router could not parse the message: "+err.Error()) {
			return nil, false
		}
		return nil, true
	}
	t := r.Table() // one table for the whole message: a reload never half-applies
	o, panicked := evaluateSafely(t, condition.Input{Listener: in.listener, Message: &r.parsed}, data)
	if panicked {
		if !in.deadLetter("_router", "the router panicked while routing this message (a bug in hl7broker: please report it)") {
			return nil, false
		}
		return nil, true
	}
	// Timed before any copy is stored: a journey orders by time, and a
	// copy's first attempt can start before this event is recorded.
	ev := wire.Event{Kind: wire.EventRouted, At: time.Now(), Message: seq, Unrouted: o.Unrouted}
	addRoute := func(route string) {
		if !slices.Contains(ev.Routes, route) {
			ev.Routes = append(ev.Routes, route)
		}
	}
	for _, d := range o.DeadLetters {
		addRoute(d.Route)
		if !in.deadLetter(d.Route, d.Reason) {
			return nil, false
		}
	}
	for _, c := range o.Copies {
		if c.Route != "_unrouted" {
			addRoute(c.Route)
		}
		parsed := &r.parsed // the input, already parsed: the copy is it unless a transform changed it
		if !sameBytes(c.Data, data) {
			parsed = nil
		}
		extra, err := wire.VarsHeader(c.Vars)
		if err != nil {
			if !in.deadLetter(c.Route, "route "+c.Route+": "+err.Error()) {
				return nil, false
			}
			continue
		}
		stopped, tooBig := in.store(extra, c.Destination, c.Route, c.Data, t.outSubject(c.Destination, c.Data, parsed))
		if stopped {
			return nil, false
		}
		if tooBig {
			if !in.deadLetter(c.Route, fmt.Sprintf("the copy for destination %s (%d bytes) exceeds the store's max_payload", c.Destination, len(c.Data))) {
				return nil, false
			}
			continue
		}
		sent = append(sent, c.Destination)
		if r.Events != nil {
			if ev.OutSeqs == nil {
				ev.OutSeqs = map[string]uint64{}
			}
			ev.OutSeqs[c.Destination] = in.outSeq
			if parsed == nil {
				ev.Changed = append(ev.Changed, c.Destination)
			}
		}
	}
	ev.Destinations = sent
	r.Events.Record(ev)
	if r.OnMatched != nil && len(ev.Routes) > 0 {
		r.OnMatched(ev.Routes)
	}
	if o.Unrouted {
		in.log().Warn().Str("unrouted_to", t.UnroutedTo).Msg("no route matched: unrouted")
	}
	return sent, true
}

// evaluateSafely is Evaluate with a panic recovered: one poison message
// must not crash the router, which would route it again, and crash
// again, on every restart. Conditions and steps recover their own panics
// (naming themselves); this catches the rest.
func evaluateSafely(t *Table, in condition.Input, data []byte) (o Plan, panicked bool) {
	defer func() {
		if recover() != nil {
			o, panicked = Plan{}, true
		}
	}()
	return Evaluate(t.Routes, t.UnroutedTo, in, data, false), false
}

func (r *Router) sync(ctx context.Context) error {
	if r.Sync == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, store.PublishTimeout)
	defer cancel()
	return r.Sync(ctx)
}

// outSubject is hl7.out.<dest>, or hl7.out.<dest>.<partition> for a
// key-ordered destination: the partition is a hash of the key field,
// read from parsed (data parsed) when given, else from parsing data.
func (t *Table) outSubject(dest string, data []byte, parsed *hl7.Message) string {
	p, ok := t.Partitions[dest]
	if !ok || p.Partitions < 2 {
		return wire.OutSubject(dest)
	}
	if parsed == nil {
		parsed, _ = hl7.Parse(data)
	}
	var key []byte
	if parsed != nil {
		key, _ = parsed.Raw(p.Path)
	}
	h := fnv.New32a()
	h.Write(key)
	return wire.PartitionSubject(dest, int(h.Sum32()%uint32(p.Partitions)))
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// OutSubject is the HL7_OUT subject of a copy of data for dest, by the
// table in force: a replayed copy goes where a routed one would.
func (r *Router) OutSubject(dest string, data []byte) string {
	return r.Table().outSubject(dest, data, nil)
}

// storedCopy is a copy found in HL7_OUT for an input routed again.
type storedCopy struct{ inSeq, outSeq uint64 }

// findStored reads HL7_OUT's tail for the copies of inputs floor+1..last
// (those an earlier run or another router was given but did not ack), so
// that routing them again stores none twice, whenever they were stored:
// HL7_OUT's own duplicate window is only store.RouterHorizon. One router
// at a time routes in stored order, so their copies are among the last
// records; replays may sit between them, hence a bound rather than a stop
// at the first older copy.
func (r *Router) findStored(ctx context.Context, floor, last uint64) error {
	r.stored = map[string]storedCopy{}
	s, err := r.JetStream.Stream(ctx, wire.StreamOut)
	if err != nil {
		return fmt.Errorf("read HL7_OUT's tail: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("read HL7_OUT's tail: %w", err)
	}
	limit := 1024 + int(last-floor)*64 // 64 copies an input: destinations, dead letters, replays between
	for seq := info.State.LastSeq; seq >= max(info.State.FirstSeq, 1) && limit > 0; seq-- {
		limit--
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged once delivered
		} else if err != nil {
			return fmt.Errorf("read HL7_OUT's tail: %w", err)
		}
		in, _ := strconv.ParseUint(m.Header.Get(wire.HeaderInSeq), 10, 64)
		if in > floor && in <= last {
			if id := m.Header.Get(nats.MsgIdHdr); id != "" {
				r.stored[id] = storedCopy{inSeq: in, outSeq: seq}
			}
		}
	}
	return nil
}
