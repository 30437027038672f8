package feed

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
)

// SendOptions say how SendOne prepares a message (hl7broker send).
type SendOptions struct {
	KeepTerminators bool // send segments with the file's own terminators; else every segment ends with CR
	FreshControlID  bool // give the message a new MSH-10
}

// SendResult is what became of one message sent.
type SendResult struct {
	ControlID string // MSH-10 sent; "" when the message did not parse
	Code      string // the ACK's MSA-1; "" without an ACK
	Text      string // the ACK's text and ERR segments, or why it failed
	Accepted  bool   // AA or CA, with MSA-2 the MSH-10 sent
}

// SendOne prepares raw, sends it over c and checks its ACK. A message that
// does not parse is sent anyway (to try a receiver's rejections), its
// line ends made CR.
func SendOne(ctx context.Context, c *mllp.Client, raw []byte, o SendOptions) SendResult {
	payload, controlID, err := prepare(raw, o)
	if err != nil {
		return SendResult{Text: "not sent: " + err.Error()}
	}
	reply, err := c.Send(ctx, payload)
	if err != nil {
		return SendResult{ControlID: controlID, Text: err.Error()}
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return SendResult{ControlID: controlID, Text: "reply is not an ACK: " + err.Error()}
	}
	text := ack.Text
	for _, e := range ack.Errors {
		text = strings.TrimSpace(fmt.Sprintf("%s [ERR %d %s %s %s]", text, e.Code, e.CodeText, e.Location, e.Text))
	}
	if controlID != "" && ack.ControlID != controlID {
		return SendResult{ControlID: controlID, Code: string(ack.Code), Text: fmt.Sprintf("MSA-2 is %q, not the MSH-10 sent %s", ack.ControlID, text)}
	}
	return SendResult{ControlID: controlID, Code: string(ack.Code), Text: text, Accepted: ack.Positive()}
}

// prepare gives the bytes to send and the control ID sent.
func prepare(raw []byte, o SendOptions) ([]byte, string, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		if o.KeepTerminators {
			return raw, "", nil
		}
		// SplitBatch has already removed any byte-order mark.
		r := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r"))
		return bytes.ReplaceAll(r, []byte("\n"), []byte("\r")), "", nil
	}
	if o.FreshControlID {
		if err := m.Set(hl7.PathMSH10, hl7.NewControlID()); err != nil {
			return nil, "", err
		}
	}
	if o.KeepTerminators {
		return m.Bytes(), m.ControlID(), nil
	}
	return m.AppendTerminated(nil, "\r"), m.ControlID(), nil
}
