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
