package wire

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
)

// The records' headers, pinned: stored records outlive versions, and every
// writer builds them here.
func TestRecordRecipes(t *testing.T) {
	at := time.Date(2026, 1, 14, 13, 15, 31, 5, time.FixedZone("CST", -6*3600))
	h := InRecord{ControlID: "C1", Type: "ADT", Event: "A01", Listener: "adt", ReceivedAt: at}.Header()
	assert.Equal(t, nats.Header{HeaderControlID: {"C1"}, HeaderType: {"ADT"}, HeaderEvent: {"A01"}, HeaderListener: {"adt"},
		HeaderReceivedAt: {"2026-01-14T19:15:31.000000005Z"}}, h, "empty fields left out; the time in UTC")
	f := InRecord{Listener: "drop", File: "a.hl7", FileDigest: "ab12", FileIndex: 0}.Header()
	assert.Equal(t, []string{"a.hl7", "ab12", "0"}, []string{f.Get(HeaderFile), f.Get(HeaderFileDigest), f.Get(HeaderFileIndex)}, "a file's first message is index 0")

	in := nats.Header{HeaderControlID: {"C1"}, "Nats-Msg-Id": {"x"}}
	c := CopyHeader(in, "adt", 41)
	assert.Equal(t, nats.Header{HeaderControlID: {"C1"}, HeaderRoute: {"adt"}, HeaderInSeq: {"41"}}, c, "NATS's control headers are not copied")
	assert.Equal(t, []string{"x"}, in["Nats-Msg-Id"], "the input's headers are untouched")

	Letter{Destination: "emr", Reason: "AR", Attempts: 3, At: at}.Mark(c)
	assert.Equal(t, []string{"emr", "AR", "3", "2026-01-14T19:15:31.000000005Z"},
		[]string{c.Get(HeaderDestination), c.Get(HeaderDLQReason), c.Get(HeaderDLQAttempts), c.Get(HeaderDLQTime)})
	Unmark(c)
	assert.Equal(t, nats.Header{HeaderControlID: {"C1"}, HeaderRoute: {"adt"}, HeaderInSeq: {"41"}}, c)
}
