package delivery

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/script"
)

type payloads struct{ got [][]byte }

func (r *payloads) Deliver(_ context.Context, m Message) Result {
	r.got = append(r.got, m.Data)
	return Result{Outcome: Delivered}
}

func (r *payloads) Close() error { return nil }

// An encoder's payload is what the destination sends: the script sees
// the copy's variables; one that throws rejects that message (it would
// throw again on a retry) with the script's place, never a value.
func TestEncoderMakesThePayloadAndAFailureRejectsWithoutValues(t *testing.T) {
	e, err := script.NewEngine(script.Options{})
	require.NoError(t, err)
	enc, err := e.Compile("destination web encoder", script.Encoder,
		"if (msg.get('PID-3.1') == 'BAD') { throw new Error('bad ' + msg.get('PID-3.1')); }\nreturn {mrn: msg.get('PID-3.1'), ward: vars.ward}", false)
	require.NoError(t, err)
	d := config.DestinationConfig{Name: "web", Encoder: &config.EncoderConfig{Script: "…", Velocity: "<p>${message.encodedData}</p>"}}
	encode, err := NewEncoding(d, enc)
	require.NoError(t, err)
	r := &payloads{}
	dl := Encoded(r, encode)
	res := dl.Deliver(context.Background(), Message{Data: []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||M1\r"), Vars: map[string]string{"ward": "4B"}})
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	assert.Equal(t, `<p>{"mrn":"M1","ward":"4B"}</p>`, string(r.got[0]))

	res = dl.Deliver(context.Background(), Message{Data: []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|2|P|2.5\rPID|1||BAD\r")})
	assert.Equal(t, Rejected, res.Outcome)
	assert.Contains(t, res.Reason, "script destination web encoder line 1:")
	assert.NotContains(t, res.Reason, "BAD")
}

// encoding: json with json_names names the keys from the message's
// version; without it the document is the segments alone.
func TestJSONEncodingWithNames(t *testing.T) {
	msg := Message{Data: []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A08|1|P|2.5.1\rPID|1||M1||Doe^Jo\r")}
	named, err := NewEncoding(config.DestinationConfig{Name: "web", Encoding: "json", JSONNames: true}, nil)
	require.NoError(t, err)
	out, err := named(msg)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"names":{"MSH":"Message Header"`)
	assert.Contains(t, string(out), `"PID.5.1":"Family Name"`)
	plain, err := NewEncoding(config.DestinationConfig{Name: "web", Encoding: "json"}, nil)
	require.NoError(t, err)
	out, err = plain(msg)
	require.NoError(t, err)
	assert.NotContains(t, string(out), `"names"`)
}
