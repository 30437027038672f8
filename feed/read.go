package feed

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
)

// Message is one message of a file, as the tools read it: its file, its
// place there (from 1) and its bytes.
type Message struct {
	File  string
	Index int
	Raw   []byte
}

// ReadMessages reads each file ("-" is in) and splits it into messages
// (batches, back-to-back messages, byte-order marks stripped), in order.
// A file that cannot be read or split is reported to failed, a split's
// warnings to warn; the others are still read.
func ReadMessages(names []string, in io.Reader, failed func(file string, err error), warn func(file, reason string)) []Message {
	var msgs []Message
	for _, name := range names {
		data, err := readFile(name, in)
		var b *hl7.Batch
		if err == nil {
			b, err = hl7.SplitBatch(data, hl7.Limits{})
		}
		if err != nil {
			failed(name, err)
			continue
		}
		for i, m := range b.Messages {
			msgs = append(msgs, Message{File: name, Index: i + 1, Raw: m})
		}
		for _, w := range b.Warnings {
			warn(name, w.Reason)
		}
	}
	return msgs
}

func readFile(name string, in io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(in)
	}
	return os.ReadFile(name)
}

// Line is a message's report line, tab-separated: FILE INDEX CONTROL-ID
// ACK-CODE TEXT ("-" for what is missing).
func (m Message) Line(r SendResult) string {
	return fmt.Sprintf("%s\t%d\t%s\t%s\t%s", m.File, m.Index, cmp.Or(r.ControlID, "-"), cmp.Or(r.Code, "-"), OneLine(r.Text))
}

// OneLine is s with its line breaks and tabs made spaces.
func OneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ", "\t", " ").Replace(s) }

// SendAll sends msgs over c, repeat times, one after another, at most rate
// a second (0: as fast as ACKs come back), and calls each with every
// result. It returns how many were sent and accepted, and stops early
// when ctx ends.
func SendAll(ctx context.Context, c *mllp.Client, msgs []Message, repeat int, rate float64, o SendOptions, each func(Message, SendResult)) (sent, accepted int, err error) {
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	for range repeat {
		for _, m := range msgs {
			if tick != nil && sent > 0 {
				select {
				case <-tick:
				case <-ctx.Done():
					return sent, accepted, ctx.Err()
				}
			}
			r := SendOne(ctx, c, m.Raw, o)
			each(m, r)
			sent++
			if r.Accepted {
				accepted++
			}
			if ctx.Err() != nil {
				return sent, accepted, ctx.Err()
			}
		}
	}
	return sent, accepted, nil
}
