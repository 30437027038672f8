package loadtest

import (
	"context"

	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
)

// SinkReport is what bench --sink found about the broker's deliveries.
type SinkReport struct {
	Delivered  int64 `json:"delivered"`    // acked messages that arrived
	Lost       int64 `json:"lost"`         // acked, never arrived before the wait ended
	Duplicates int64 `json:"duplicates"`   // arrivals beyond the first
	OutOfOrder int64 `json:"out_of_order"` // arrived before a message of the same patient acked before it was sent
	Unknown    int64 `json:"unknown"`      // arrivals this run did not send (or not acked)
	// OutOfOrderIDs are up to 20 pairs "A after B": A was acked before B
	// was sent, and arrived after it. For finding where order broke.
	OutOfOrderIDs []string `json:"out_of_order_ids,omitempty"`

	// End to end: what arrived while bench was sending, how long the
	// rest took to arrive after it stopped, and the rate from the first
	// message sent to the last one delivered.
	DuringLoad          int64   `json:"delivered_during_load"`
	DuringLoadPerSecond float64 `json:"delivered_per_second_during_load"`
	DrainSeconds        float64 `json:"drain_seconds"`
	EndToEndPerSecond   float64 `json:"end_to_end_per_second"`
	MaxQueued           int64   `json:"max_queued"`
	// Queue is the broker's backlog as bench sees it, sampled once a
	// second from the start until the last delivery: positively acked
	// so far minus delivered so far.
	Queue []QueueSample `json:"queue"`
}

// QueueSample is the backlog at one moment of a run.
type QueueSample struct {
	Seconds   float64 `json:"s"`
	Acked     int64   `json:"acked"`
	Delivered int64   `json:"delivered"`
	Queued    int64   `json:"queued"`
}

// ackedMsg is one message bench sent and the broker acknowledged.
type ackedMsg struct {
	patient         string
	sentAt, ackedAt time.Time
}

// sink is an MLLP endpoint that answers AA and records arrivals.
type sink struct {
	srv     *mllp.Server
	mu      sync.Mutex
	arrived map[string][]int // control ID -> arrival positions
	n       int
	firsts  atomic.Int64  // distinct control IDs arrived
	lastAt  time.Time     // the last first arrival
	firstAt []time.Time   // when each control ID first arrived, in order
	changed chan struct{} // closed and replaced when missing reaches 0
	want    map[string]ackedMsg
	missing int // of want, not arrived yet (once wait has set want)
}

func startSink(addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{arrived: map[string][]int{}, changed: make(chan struct{})}
	s.srv = &mllp.Server{Name: "bench-sink", Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		m, err := hl7.Parse(frame)
		if err != nil {
			return hl7.BuildRejectAck(frame, hl7.AckOptions{Outcome: hl7.Rejected})
		}
		id := m.ControlID()
		s.mu.Lock()
		s.n++
		s.arrived[id] = append(s.arrived[id], s.n)
		if len(s.arrived[id]) == 1 {
			s.firsts.Add(1)
			s.lastAt = time.Now()
			s.firstAt = append(s.firstAt, s.lastAt)
		}
		if _, wanted := s.want[id]; wanted && len(s.arrived[id]) == 1 {
			if s.missing--; s.missing == 0 {
				close(s.changed)
			}
		}
		s.mu.Unlock()
		return hl7.BuildAck(m, hl7.AckOptions{Outcome: hl7.Accepted})
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// arrivedBy counts the control IDs that first arrived before t.
func (s *sink) arrivedBy(t time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := slices.BinarySearchFunc(s.firstAt, t, func(a, t time.Time) int { return a.Compare(t) })
	return int64(n)
}

// wait returns when every control ID in want has arrived, or at
// deadline. Arrivals are counted as they come (no rescans).
func (s *sink) wait(want map[string]ackedMsg, deadline time.Time) {
	s.mu.Lock()
	s.want, s.missing = want, 0
	for id := range want {
		if len(s.arrived[id]) == 0 {
			s.missing++
		}
	}
	done := s.missing == 0
	changed := s.changed
	s.mu.Unlock()
	if done {
		return
	}
	select {
	case <-changed:
	case <-time.After(time.Until(deadline)):
	}
}

func (s *sink) close() { _ = s.srv.Close() }

// report compares arrivals with what was acked. Order: per patient, a
// message acked before another was sent must arrive first (messages in
// flight at the same time may be stored in either order).
func (s *sink) report(acked map[string]ackedMsg) SinkReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r SinkReport
	type arrival struct {
		ackedMsg
		pos int
		id  string
	}
	byPatient := map[string][]arrival{}
	for id, at := range s.arrived {
		st, ok := acked[id]
		if !ok {
			r.Unknown += int64(len(at))
			continue
		}
		r.Delivered++
		r.Duplicates += int64(len(at) - 1)
		byPatient[st.patient] = append(byPatient[st.patient], arrival{st, at[0], id})
	}
	r.Lost = int64(len(acked)) - r.Delivered
	for _, msgs := range byPatient {
		// Sorted by ack time, with the latest arrival among those acked so
		// far: B is out of order if some A acked before B was sent arrived
		// after B.
		byAck := slices.Clone(msgs)
		slices.SortFunc(byAck, func(a, b arrival) int { return a.ackedAt.Compare(b.ackedAt) })
		latest := make([]int, len(byAck)) // the index in byAck of the latest arrival so far
		for i, a := range byAck {
			latest[i] = i
			if i > 0 && byAck[latest[i-1]].pos > a.pos {
				latest[i] = latest[i-1]
			}
		}
		for _, b := range msgs {
			i, _ := slices.BinarySearchFunc(byAck, b.sentAt, func(a arrival, t time.Time) int { return a.ackedAt.Compare(t) })
			if i > 0 && byAck[latest[i-1]].pos > b.pos {
				r.OutOfOrder++
				if len(r.OutOfOrderIDs) < 20 {
					r.OutOfOrderIDs = append(r.OutOfOrderIDs, byAck[latest[i-1]].id+" after "+b.id)
				}
			}
		}
	}
	return r
}
