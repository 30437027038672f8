package wire

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

// The wire format is what stored messages carry across versions: a name
// or recipe that changes would strand what an older version stored, so
// each is pinned here.
func TestNamesAndRecipesAreStable(t *testing.T) {
	assert.Equal(t, "hl7.in.lab.ORU.R01", InSubject("lab", "ORU", "R01"))
	assert.Equal(t, "alerts.facts.host-1_4242_17", AlertFactsKey("host-1/4242/17"), "a broker's id made safe for a key")
	assert.Equal(t, "hl7.in.lab._.A_B", InSubject("lab", "", "A.B"), "empty and unsafe values become safe tokens")
	assert.Equal(t, "hl7.out.emr", OutSubject("emr"))
	assert.Equal(t, "hl7.out.emr.3", PartitionSubject("emr", 3))
	assert.Equal(t, "hl7.dlq._transform", DLQSubject(TransformDLQ))
	assert.Equal(t, "deliver-emr", DeliveryConsumer("emr"))
	assert.Equal(t, "deliver-emr-3", PartitionConsumer("emr", 3))
	assert.Equal(t, "42:emr", CopyID(42, "emr"))
	assert.Equal(t, "42:_transform:adt", CopyID(42, TransformDLQ+":adt"))
	assert.Equal(t, "dlq:emr:7", DeadLetterID("emr", 7))
	id := IngestID("lab", [16]byte{0xab}, [16]byte{0xcd})
	assert.Len(t, id, len("lab:")+64)
	assert.Equal(t, "lab:ab", id[:6])
}

func TestAuditEntryBoundedCutsLongFieldsOnCharacterBoundaries(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2,000 bytes
	e := AuditEntry{User: "olga", Detail: "GET /api/v1/" + long, IDs: []string{"1", strings.Repeat("9", 100)}}
	b := e.Bounded()
	assert.Equal(t, "olga", b.User, "short fields stay")
	assert.LessOrEqual(t, len(b.Detail), AuditMaxField)
	assert.True(t, utf8.ValidString(b.Detail), "cut between characters")
	assert.True(t, strings.HasSuffix(b.Detail, "…(2012 bytes)"), b.Detail)
	assert.Equal(t, "1", b.IDs[0])
	assert.LessOrEqual(t, len(b.IDs[1]), AuditMaxID)
	assert.Len(t, e.IDs[1], 100, "the entry given is not changed")
}

// Each journey event reads as a sentence naming listeners, destinations,
// routes, codes and reasons: what `hl7broker messages show` prints.
func TestEventsDescribeThemselvesInWords(t *testing.T) {
	for want, e := range map[string]Event{
		"received on lab from 10.0.0.5:4000, answered AA (a resend: stored once)": {Kind: "received", Listener: "lab", Remote: "10.0.0.5:4000", Ack: "AA", Duplicate: true},
		"received as a replay by alice":                                           {Kind: "received", By: "alice", Listener: "lab"},
		"routed to emr, archive by adt":                                           {Kind: "routed", Destinations: []string{"emr", "archive"}, Routes: []string{"adt"}},
		"routed nowhere (no route matched)":                                       {Kind: "routed", Unrouted: true},
		"attempt emr attempt 2: retry AE (12.5 ms) timeout":                       {Kind: "attempt", Destination: "emr", Attempt: 2, Outcome: "retry", Code: "AE", Millis: 12.5, Reason: "timeout"},
		"dead_lettered emr after 5 attempts: refused (dead letter 9)":             {Kind: "dead_lettered", Destination: "emr", Attempt: 5, Reason: "refused", DLQ: 9},
		"replayed by bob to archive as message 42 from dead letter 9":             {Kind: "replayed", By: "bob", Destination: "archive", As: 42, DLQ: 9},
		"purged dead letter 9 of emr by carol":                                    {Kind: "purged", DLQ: 9, Destination: "emr", By: "carol"},
	} {
		assert.Equal(t, want, e.Describe())
	}
}

// A digest is no content: an event that must shed its payload keeps it,
// and the journey shows neither.
func TestDigestOutlivesContentButNotTheJourney(t *testing.T) {
	e := Event{Kind: EventDelivered, Message: 1, Destination: "emr", Sent: []byte("{}"), Response: []byte("MSA|AA"), SHA256: "ab"}
	lean := e.WithoutContent()
	if lean.SHA256 != "ab" || lean.Sent != nil || lean.Response != nil || lean.SentSize != SentUnkept {
		t.Fatalf("WithoutContent: %+v", lean)
	}
	if j := e.ForJourney(); j.SHA256 != "" || j.Sent != nil {
		t.Fatalf("ForJourney: %+v", j)
	}
}
