package wire

import (
	"testing"

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
