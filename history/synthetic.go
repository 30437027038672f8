package history

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

// SyntheticStart is when the first synthetic message was received.
var SyntheticStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// synthetic is message i as HL7_IN stores it: ADT and ORU, 200,000
// patients, one every 10 ms of received time.
func synthetic(i int) Item {
	typ, ev := "ADT", "A08"
	if i%3 == 0 {
		typ, ev = "ORU", "R01"
	}
	ctl := fmt.Sprintf("CTL%08d", i)
	data := fmt.Sprintf("MSH|^~\\&|LAB|HOSP|EMR|HOSP|20261101000000||%s^%s|%s|P|2.5\rPID|1||MRN%07d^^^HOSP^MR||DOE^JANE||19800101|F\rOBR|1||ACC%08d\r",
		typ, ev, ctl, i%200_000, i)
	at := SyntheticStart.Add(time.Duration(i) * 10 * time.Millisecond)
	h := nats.Header{}
	h.Set(wire.HeaderControlID, ctl)
	h.Set(wire.HeaderType, typ)
	h.Set(wire.HeaderEvent, ev)
	h.Set(wire.HeaderListener, "lab")
	h.Set(wire.HeaderSendingApp, "LAB")
	h.Set(wire.HeaderSendingFac, "HOSP")
	h.Set(wire.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	return Item{Stream: wire.StreamIn, Seq: uint64(i + 1), Subject: wire.InSubject("lab", typ, ev), Header: h, Data: []byte(data), Time: at}
}

// journeyBatch is the events of messages [from, to): received, routed to
// emr, and delivered (one in a hundred dead-lettered), as one HL7_EVENTS
// record.
func journeyBatch(seq uint64, from, to int) Item {
	var b []byte
	for i := from; i < to; i++ {
		at := SyntheticStart.Add(time.Duration(i) * 10 * time.Millisecond)
		id := uint64(i + 1)
		rc, _ := json.Marshal(wire.Event{Kind: wire.EventReceived, At: at, Message: id, Listener: "lab", Ack: "AA", Remote: "127.0.0.1:40000",
			SHA256: fmt.Sprintf("%064x", i+1)})
		b = append(append(b, rc...), '\n')
		r, _ := json.Marshal(wire.Event{Kind: wire.EventRouted, At: at.Add(time.Millisecond), Message: id, Routes: []string{"all"},
			Destinations: []string{"emr"}, OutSeqs: map[string]uint64{"emr": id}})
		ctl := fmt.Sprintf("CTL%08d", i)
		d := wire.Event{Kind: wire.EventDelivered, At: at.Add(2 * time.Millisecond), Message: id, Destination: "emr", Attempt: 1, Outcome: "delivered", Code: "AA",
			SHA256:   fmt.Sprintf("%064x", i),                                                                                    // what the EMR received
			Response: []byte("MSH|^~\\&|EMR|HOSP|LAB|HOSP|20261101000001||ACK^A08^ACK|A" + ctl + "|P|2.5\rMSA|AA|" + ctl + "\r")} // the EMR's ACK, as MLLP keeps it
		if i%100 == 0 {
			d = wire.Event{Kind: wire.EventDeadLettered, At: at.Add(2 * time.Millisecond), Message: id, Destination: "emr", Attempt: 1, Reason: "rejected: AR"}
		}
		e, _ := json.Marshal(d)
		b = append(append(append(append(b, r...), '\n'), e...), '\n')
	}
	return Item{Stream: wire.StreamEvents, Seq: seq, Subject: wire.SubjectEvents, Data: b}
}

// BuildSynthetic makes an index at path of n made-up messages with their
// journeys, as the Indexer would (batches of a thousand): ADT and ORU,
// 200,000 patients (search keys mrn: PID-3.1 and accession: OBR-3.1), one
// every 10 ms from SyntheticStart, one in a hundred dead-lettered. For
// benchmarks of this package and of the admin API; shared by both, so it
// is not in a _test file.
func BuildSynthetic(path string, n int) (*Index, error) {
	ix, err := OpenIndex(path, map[string]string{"mrn": "PID-3.1", "accession": "OBR-3.1"})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	const perBatch = 1000
	var evSeq uint64
	for from := 0; from < n; from += perBatch {
		to := min(from+perBatch, n)
		items := make([]Item, 0, to-from+1)
		for i := from; i < to; i++ {
			items = append(items, synthetic(i))
		}
		evSeq++
		items = append(items, journeyBatch(evSeq, from, to))
		if err := ix.Apply(ctx, items); err != nil {
			ix.Close()
			return nil, err
		}
	}
	return ix, nil
}
