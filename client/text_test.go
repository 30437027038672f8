package client

import (
	"strings"
	"testing"

	"github.com/hl7broker/hl7broker/history"
	"github.com/stretchr/testify/assert"
)

// messages show writes, per copy, the payload when a destination sent
// something other than the message (an encoding) and what came back.
func TestWriteMessageShowsWhatEachCopySentAndGotBack(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||M1\r"
	v := history.View{Message: msg, Copies: []history.CopyContent{
		{Copy: history.Copy{Destination: "emr", Status: "delivered", Attempts: 1, Code: "AA"}, Sent: msg, Response: "MSH|^~\\&|C|D\rMSA|AA|X1\r"},
		{Copy: history.Copy{Destination: "web", Status: "delivered", Attempts: 1, Code: "201"}, Sent: `{"segments":[]}`, SentSize: 300000,
			Response: "HTTP 201 Created\nContent-Type: application/json\n\n{}"},
		{Copy: history.Copy{Destination: "files", Status: "delivered", Attempts: 1}, Sent: msg, SentName: "/out/X1.hl7"},
	}}
	var b strings.Builder
	WriteMessage(&b, v)
	out := b.String()
	assert.Contains(t, out, "emr answered:\n  MSH|^~\\&|C|D\n  MSA|AA|X1\n")
	assert.NotContains(t, out, "emr sent", "the message as received is not written twice")
	assert.Contains(t, out, "web sent (the first 15 of 300000 bytes):\n  {\"segments\":[]}\n")
	assert.Contains(t, out, "web answered:\n  HTTP 201 Created\n")
	assert.Contains(t, out, "files: written to /out/X1.hl7\n")
}
