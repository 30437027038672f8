package mllp

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// Waiting for a reply with short read deadlines first.
//
// A goroutine blocked in a socket read is woken by the Go scheduler's
// network poller, which looks for ready sockets when a processor runs out
// of queued goroutines (or, failing that, every 10 ms). On a broker whose
// cores are busy with many senders, a queue's one connection then waits
// for its downstream's ACK long after the ACK has arrived, and an ordered
// queue, which has one message on the wire, falls behind its senders. A
// read deadline is a timer, and a timer that fires puts its goroutine
// first in line on its processor. So the client first waits for the
// reply with short deadlines that double (quickWaitFirst up to
// quickWaitLast, about 1 ms in all), reading whatever has arrived at each,
// and only then blocks until the round trip's own deadline. A reply that
// comes quickly costs nothing more; a slow one costs a few timer wake-ups.
const (
	quickWaitFirst = 16 * time.Microsecond
	quickWaitLast  = 512 * time.Microsecond
)

// quickReader is the source of a plain TCP client connection's Reader.
type quickReader struct {
	conn     net.Conn
	ctx      context.Context // the round trip's
	deadline time.Time       // the round trip's; zero: none
}

func (q *quickReader) Read(p []byte) (int, error) {
	if q.ctx == nil { // not in a round trip
		return q.conn.Read(p)
	}
	for wait := quickWaitFirst; wait <= quickWaitLast; wait *= 2 {
		d := time.Now().Add(wait)
		if !q.deadline.IsZero() && !d.Before(q.deadline) {
			break
		}
		_ = q.conn.SetReadDeadline(d)
		// A cancelled round trip sets a deadline in the past; one set
		// after it must not undo it.
		if err := q.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := q.conn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			q.restore()
			return n, err
		}
	}
	q.restore()
	if err := q.ctx.Err(); err != nil {
		return 0, err
	}
	return q.conn.Read(p)
}

// restore puts the round trip's own deadline back.
func (q *quickReader) restore() { _ = q.conn.SetReadDeadline(q.deadline) }
