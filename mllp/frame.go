package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// MLLP framing bytes: a frame is StartBlock, the message, EndBlock, CR.
const (
	StartBlock byte = 0x0B
	EndBlock   byte = 0x1C
	CR         byte = 0x0D
)

// DefaultMaxFrameBytes bounds a frame when a Reader or Server sets none.
const DefaultMaxFrameBytes = 1 << 20

// FrameError is a frame the reader refused. The reader has already
// resynchronised: the next ReadFrame starts at the next StartBlock.
type FrameError struct {
	Reason string
	Size   int    // bytes of the refused frame seen so far
	Prefix []byte // its first bytes (up to PrefixBytes), for a reply; never log them
}

func (e *FrameError) Error() string { return fmt.Sprintf("mllp: %s (%d bytes)", e.Reason, e.Size) }

// ErrFrameTooLarge is matched with errors.Is by a FrameError for a frame
// over the size limit.
var ErrFrameTooLarge = errors.New("mllp: frame over the size limit")

// Is lets errors.Is(err, ErrFrameTooLarge) match oversize frames.
func (e *FrameError) Is(target error) bool {
	return target == ErrFrameTooLarge && e.Reason == reasonTooLarge
}

const reasonTooLarge = "frame over the size limit"

// PrefixBytes is how much of a refused frame a FrameError keeps, enough
// for an HL7 MSH segment so a reject ACK can name the message.
const PrefixBytes = 1024

// Reader reads MLLP frames from a stream. A message split over many reads
// and many messages in one read both work. Bytes before a StartBlock are
// discarded and counted; a frame over MaxFrameBytes is discarded without
// being buffered whole.
type Reader struct {
	br  *bufio.Reader // nil while released (Release)
	src io.Reader
	buf []byte

	// MaxFrameBytes limits a frame's message; 0 means DefaultMaxFrameBytes.
	MaxFrameBytes int
	// AllowMissingCR accepts a frame ended by EndBlock alone, for senders
	// that omit the final CR.
	AllowMissingCR bool
	// OnFrameStart, when set, is called as a frame's StartBlock is read
	// (the server starts its per-frame read deadline there).
	OnFrameStart func()
	// OnJunk, when set, is called at the first byte outside a frame (not
	// CR or LF) while waiting for a StartBlock: the server starts its read
	// deadline there, so bytes that never become a frame cannot hold a
	// connection open.
	OnJunk func()

	// JunkBytes counts bytes discarded outside frames (not counting CR or
	// LF between frames, which senders often add).
	JunkBytes int64

	// Budget, if set, is charged for the frame buffer's capacity as it
	// grows; ReadFrame fails with ErrFrameBudget when it would go over.
	// Close gives back what was charged.
	Budget  *Budget
	charged int64 // cap(buf) charged to Budget
}

// readBufferSize is a Reader's read buffer: small, as net/http's, since a
// server holds one per connection and most connections are idle; a frame
// longer than it is gathered in Reader.buf as it comes.
const readBufferSize = 4 << 10

// retainBytes is the largest frame buffer a Reader keeps between frames:
// one large message does not pin its size for the connection's life.
const retainBytes = 64 << 10

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), src: r}
}

// releaseAfter is how long a connection waits for its sender's next
// message before giving its buffers back (a busy sender's messages come
// sooner, and are read as ever).
const releaseAfter = time.Second

// readBuffers keeps the read buffers of idle connections' Readers.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// Buffered is how many bytes were read from the stream and not yet
// returned in a frame.
func (r *Reader) Buffered() int {
	if r.br == nil {
		return 0
	}
	return r.br.Buffered()
}

// Release gives back the read buffer and the frame buffer, when nothing
// is buffered, so that a connection waiting for its sender's next message
// holds neither; the next ReadFrame takes a buffer again. The server
// calls it when a sender has been quiet for releaseAfter, then waits
// without reading for the connection to become readable: a thousand idle
// connections hold 5 MB less.
func (r *Reader) Release() {
	if r.br == nil || r.br.Buffered() > 0 {
		return
	}
	r.br.Reset(nil)
	readBuffers.Put(r.br)
	r.br, r.buf = nil, nil
	r.uncharge()
	if testHookRelease != nil {
		testHookRelease()
	}
}

// testHookRelease, set by tests, is called as a Reader releases its buffers.
var testHookRelease func()

// ReadFrame returns the next frame's message, without its framing bytes.
// The slice is valid until the next call. It returns io.EOF when the
// stream ends between frames, io.ErrUnexpectedEOF when it ends inside
// one, a *FrameError for a refused frame (the reader is then ready for
// the next one), and the stream's own errors.
func (r *Reader) ReadFrame() ([]byte, error) {
	limit := r.MaxFrameBytes
	if limit <= 0 {
		limit = DefaultMaxFrameBytes
	}
	if r.br == nil {
		r.br = readBuffers.Get().(*bufio.Reader)
		r.br.Reset(r.src)
	}
	if err := r.skipToStart(); err != nil {
		return nil, err
	}
	if r.OnFrameStart != nil {
		r.OnFrameStart()
	}
	if cap(r.buf) > retainBytes {
		r.buf = nil
		r.uncharge()
	}
	r.buf = r.buf[:0]
	total := 0 // bytes of this frame read so far, with the EndBlock once seen
	for {
		chunk, err := r.br.ReadSlice(EndBlock)
		if i := bytes.LastIndexByte(chunk, StartBlock); i >= 0 {
			// A new frame starts inside this one: the sender gave up on
			// the frame so far. Drop it and begin again.
			r.JunkBytes += int64(total + i + 1)
			r.buf, total = r.buf[:0], 0
			chunk = chunk[i+1:]
		}
		total += len(chunk)
		if total <= limit+1 {
			if err := r.grow(len(chunk)); err != nil {
				r.buf = nil
				r.uncharge()
				return nil, err
			}
			r.buf = append(r.buf, chunk...)
		} else if len(r.buf) < PrefixBytes {
			// Over the limit: keep only a prefix, drop the rest as it comes.
			r.buf = append(r.buf, chunk[:min(len(chunk), PrefixBytes-len(r.buf))]...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		// The chunk ends with EndBlock.
		size := total - 1
		ok, err := r.endsFrame()
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, r.frameError("end block not followed by CR", size)
		case total > limit+1:
			return nil, r.frameError(reasonTooLarge, size)
		}
		return r.buf[:size], nil
	}
}

// grow makes room for n more bytes in buf, charging the budget for the
// larger buffer first: a large frame may be refused when the frames of
// all connections fill the budget. Buffers up to retainBytes (most HL7
// messages) are charged but never refused, so senders of ordinary
// messages go on while a few large ones wait.
func (r *Reader) grow(n int) error {
	if r.Budget == nil || len(r.buf)+n <= cap(r.buf) {
		return nil
	}
	newCap := max(2*cap(r.buf), len(r.buf)+n, readBufferSize)
	if newCap <= retainBytes {
		r.Budget.frameBytes.Add(int64(newCap - cap(r.buf)))
	} else if !r.Budget.takeFrame(int64(newCap - cap(r.buf))) {
		return ErrFrameBudget
	}
	r.charged += int64(newCap - cap(r.buf))
	nb := make([]byte, len(r.buf), newCap)
	copy(nb, r.buf)
	r.buf = nb
	return nil
}

// uncharge gives the budget back what buf was charged.
func (r *Reader) uncharge() {
	r.Budget.giveFrame(r.charged)
	r.charged = 0
}

// Close gives back the buffers and what they were charged; the Reader is
// not used after.
func (r *Reader) Close() {
	r.buf = nil
	r.uncharge()
}

func (r *Reader) frameError(reason string, size int) *FrameError {
	n := min(len(r.buf), PrefixBytes, size)
	return &FrameError{Reason: reason, Size: size, Prefix: append([]byte(nil), r.buf[:n]...)}
}

// skipToStart discards bytes up to and including the next StartBlock.
func (r *Reader) skipToStart() error {
	junk := false
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return err
		}
		switch b {
		case StartBlock:
			return nil
		case '\r', '\n':
		default:
			r.JunkBytes++
			if !junk && r.OnJunk != nil {
				r.OnJunk()
			}
			junk = true
		}
	}
}

// endsFrame reads the CR after an EndBlock. With AllowMissingCR, a frame
// also ends when nothing more has arrived yet or the next byte is not CR
// (it is left for the next frame).
func (r *Reader) endsFrame() (bool, error) {
	if r.AllowMissingCR && r.br.Buffered() == 0 {
		return true, nil
	}
	next, err := r.br.Peek(1)
	if err != nil {
		if err == io.EOF && r.AllowMissingCR {
			return true, nil
		}
		if err == io.EOF {
			return false, io.ErrUnexpectedEOF
		}
		return false, err
	}
	if next[0] == CR {
		_, _ = r.br.Discard(1)
		return true, nil
	}
	return r.AllowMissingCR, nil
}

// AppendFrame appends msg framed for MLLP to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, StartBlock)
	dst = append(dst, msg...)
	return append(dst, EndBlock, CR)
}

// WriteFrame writes msg as one frame in a single Write.
func WriteFrame(w io.Writer, msg []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, len(msg)+3), msg))
	return err
}
