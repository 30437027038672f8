package mllp

import (
	"errors"
	"sync/atomic"
)

// Budget bounds what every server sharing it holds at once, so that no
// group of senders can take the process's memory or file descriptors:
// the bytes of frames being received (a frame is gathered whole before it
// is handed on), and the connections open. A sender that would go over
// it is cut off (its connection closed: it resends later) and is logged
// with the budget's name; every other connection goes on. The zero value
// (or nil) bounds nothing.
type Budget struct {
	// FrameBytes bounds the buffers of frames being received, on all
	// connections together. 0: no bound.
	FrameBytes int64
	// Conns bounds the connections open, on all servers together (a
	// process's file descriptors, less what storage and admin need). 0: no
	// bound.
	Conns int64

	frameBytes atomic.Int64
	conns      atomic.Int64
}

// ErrFrameBudget: a frame being received would take the frames' memory
// budget over its bound; the connection is closed.
var ErrFrameBudget = errors.New("mllp: frames being received hold the listeners' memory budget")

// takeFrame charges n bytes of frame buffer; false when over the bound.
func (b *Budget) takeFrame(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	if b.FrameBytes <= 0 {
		b.frameBytes.Add(n)
		return true
	}
	for {
		used := b.frameBytes.Load()
		if used+n > b.FrameBytes {
			return false
		}
		if b.frameBytes.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *Budget) giveFrame(n int64) {
	if b != nil && n > 0 {
		b.frameBytes.Add(-n)
	}
}

// takeConn counts a connection; false when at the bound.
func (b *Budget) takeConn() bool {
	if b == nil {
		return true
	}
	if n := b.conns.Add(1); b.Conns > 0 && n > b.Conns {
		b.conns.Add(-1)
		return false
	}
	return true
}

func (b *Budget) giveConn() {
	if b != nil {
		b.conns.Add(-1)
	}
}

// FrameBytesUsed is the frame buffers held now, for metrics.
func (b *Budget) FrameBytesUsed() int64 {
	if b == nil {
		return 0
	}
	return b.frameBytes.Load()
}

// ConnsOpen is the connections counted now, for metrics.
func (b *Budget) ConnsOpen() int64 {
	if b == nil {
		return 0
	}
	return b.conns.Load()
}
