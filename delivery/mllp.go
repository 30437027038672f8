package delivery

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/wire"
)

// MLLPOptions are the keys of type mllp.
type MLLPOptions struct {
	Addr string `mapstructure:"addr"` // HOST:PORT of the receiver
}

// type mllp: MLLP to a downstream system, each message's ACK checked.
func init() {
	Register(Type[MLLPOptions]{
		Name:      "mllp",
		Encodings: []string{"er7"},
		Check: func(o *MLLPOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			c.Addr(key+".addr", o.Addr)
		},
		New: func(o *MLLPOptions, d config.DestinationConfig, env Env) (Deliverer, error) {
			return &MLLPDeliverer{Client: &mllp.Client{Addr: o.Addr, TLSConfig: env.TLS, ReplyTimeout: d.Timeout, MaxBackoff: d.Timeout, EagerReplies: true}}, nil
		},
	})
}

// MLLPDeliverer sends over a kept MLLP connection and checks the ACK:
// AA/CA delivered; AE/CE retry; AR/CR rejected; no ACK, a timeout, an
// MSA-2 that is not the MSH-10 sent, or a connection error: retry.
type MLLPDeliverer struct{ Client *mllp.Client }

// Deliver sends data and reads its ACK.
func (d *MLLPDeliverer) Deliver(ctx context.Context, msg Message) Result {
	data := msg.Data
	reply, err := d.Client.Send(ctx, data)
	if err != nil {
		return Result{Outcome: Retry, Reason: err.Error()}
	}
	res := d.answered(data, reply)
	res.Response = bytes.Clone(reply[:min(len(reply), wire.ResponseKept)])
	return res
}

// answered is what reply, the receiver's answer to data, says.
func (d *MLLPDeliverer) answered(data, reply []byte) Result {
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return Result{Outcome: Retry, Reason: "reply is not an ACK: " + err.Error()}
	}
	if id, ok := hl7.ControlIDOf(data); ok && ack.ControlID != id {
		// The connection's replies are out of step (a stale ACK, a
		// receiver that answers the previous message): a new connection
		// makes the retry's ACK its own.
		d.Client.Reset()
		return Result{Outcome: Retry, Reason: "ACK's MSA-2 is not the MSH-10 sent; reconnecting", Code: string(ack.Code)}
	}
	// Only codes: the receiver's ERR texts are free text and may quote
	// the message, and this reason is logged and kept in the DLQ.
	reason := string(ack.Code)
	for _, e := range ack.Errors {
		reason += fmt.Sprintf(" [ERR %d]", e.Code)
	}
	code := string(ack.Code)
	switch ack.Code {
	case hl7.AA, hl7.CA:
		return Result{Outcome: Delivered, Code: code}
	case hl7.AR, hl7.CR:
		return Result{Outcome: Rejected, Reason: reason, Code: code}
	}
	return Result{Outcome: Retry, Reason: reason, Code: code}
}

// Close closes the connection.
func (d *MLLPDeliverer) Close() error { return d.Client.Close() }
