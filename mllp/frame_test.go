package mllp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

type readResult struct {
	msg string
	err string // "" for a frame, else a substring of the error
}

func readAll(r *Reader) []readResult {
	var out []readResult
	for {
		msg, err := r.ReadFrame()
		if err == io.EOF {
			return out
		}
		if err != nil {
			out = append(out, readResult{err: err.Error()})
			var fe *FrameError
			if !errors.As(err, &fe) {
				return out
			}
			continue
		}
		out = append(out, readResult{msg: string(msg)})
	}
}

func TestReadFrame(t *testing.T) {
	big := strings.Repeat("x", 40)
	tests := []struct {
		name      string
		in        string
		max       int
		allowNoCR bool
		want      []readResult
		junk      int64
	}{
		{"one", frame("MSH|a"), 0, false, []readResult{{msg: "MSH|a"}}, 0},
		{"many in one read", frame("a") + frame("b") + frame("c"), 0, false, []readResult{{msg: "a"}, {msg: "b"}, {msg: "c"}}, 0},
		{"empty frame", frame("") + frame("b"), 0, false, []readResult{{msg: ""}, {msg: "b"}}, 0},
		{"junk before", "garbage" + frame("a"), 0, false, []readResult{{msg: "a"}}, 7},
		{"newlines between frames are not junk", frame("a") + "\r\n\n" + frame("b"), 0, false, []readResult{{msg: "a"}, {msg: "b"}}, 0},
		{"oversize then resync", frame(big) + frame("ok"), 10, false, []readResult{{err: "over the size limit (40 bytes)"}, {msg: "ok"}}, 0},
		{"exactly the limit", frame(big[:10]), 10, false, []readResult{{msg: big[:10]}}, 0},
		{"missing CR refused", "\x0ba\x1c" + frame("b"), 0, false, []readResult{{err: "not followed by CR"}, {msg: "b"}}, 0},
		{"missing CR allowed mid-stream", "\x0ba\x1c" + frame("b"), 0, true, []readResult{{msg: "a"}, {msg: "b"}}, 0},
		{"missing CR allowed at end", "\x0ba\x1c", 0, true, []readResult{{msg: "a"}}, 0},
		{"restart inside a frame", "\x0bpartial" + frame("whole"), 0, false, []readResult{{msg: "whole"}}, 8},
		{"several start blocks", "\x0b\x0b\x0bx\x1c\r", 0, false, []readResult{{msg: "x"}}, 2},
		{"EOF inside a frame", frame("a") + "\x0bhalf", 0, false, []readResult{{msg: "a"}, {err: "unexpected EOF"}}, 0},
		{"EOF after end block", "\x0bhalf\x1c", 0, false, []readResult{{err: "unexpected EOF"}}, 0},
		{"binary and UTF-8 content", frame("M\xc3\xbcller\x00|\n"), 0, false, []readResult{{msg: "M\xc3\xbcller\x00|\n"}}, 0},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = strings.NewReader(tt.in)
			if oneByte {
				src = iotest.OneByteReader(src) // a message split over many reads
			}
			r := NewReader(src)
			r.MaxFrameBytes, r.AllowMissingCR = tt.max, tt.allowNoCR
			got := readAll(r)
			if len(got) != len(tt.want) {
				t.Errorf("%s (one byte %v): got %+v, want %+v", tt.name, oneByte, got, tt.want)
				continue
			}
			for i := range got {
				if got[i].msg != tt.want[i].msg || !strings.Contains(got[i].err, tt.want[i].err) || (tt.want[i].err == "") != (got[i].err == "") {
					t.Errorf("%s (one byte %v) #%d: got %+v, want %+v", tt.name, oneByte, i, got[i], tt.want[i])
				}
			}
			if r.JunkBytes != tt.junk {
				t.Errorf("%s: junk = %d, want %d", tt.name, r.JunkBytes, tt.junk)
			}
		}
	}
}

func TestOversizeFrameIsNotBuffered(t *testing.T) {
	const limit = 64 << 10
	payload := "MSH|^~\\&|A|B|C|D|1||ADT^A01|CTL1|P|2.5\r" + strings.Repeat("OBX|1|ED|x||", 1<<20/12)
	r := NewReader(strings.NewReader(frame(payload) + frame("next")))
	r.MaxFrameBytes = limit
	_, err := r.ReadFrame()
	var fe *FrameError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want an oversize FrameError", err)
	}
	if fe.Size != len(payload) || !bytes.HasPrefix([]byte(payload), fe.Prefix) || len(fe.Prefix) != PrefixBytes {
		t.Errorf("size %d prefix %d bytes; want %d and %d", fe.Size, len(fe.Prefix), len(payload), PrefixBytes)
	}
	if cap(r.buf) > 2*limit {
		t.Errorf("the reader buffered %d bytes for a %d-byte limit", cap(r.buf), limit)
	}
	if msg, err := r.ReadFrame(); err != nil || string(msg) != "next" {
		t.Errorf("after an oversize frame: %q, %v", msg, err)
	}
}

func TestWriteFrame(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, []byte("MSH|x")); err != nil {
		t.Fatal(err)
	}
	if b.String() != frame("MSH|x") {
		t.Errorf("frame = %q", b.String())
	}
	msg, err := NewReader(&b).ReadFrame()
	if err != nil || string(msg) != "MSH|x" {
		t.Errorf("read back %q, %v", msg, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{frame("a") + frame("b"), "junk\x0bx\x1c", "\x0b\x0b\x1c\r", "\x1c\r\x0b", frame(strings.Repeat("y", 100))} {
		f.Add([]byte(s), uint16(50), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, allowNoCR bool) {
		r := NewReader(bytes.NewReader(data))
		r.MaxFrameBytes, r.AllowMissingCR = int(limit)+1, allowNoCR
		total := 0
		for i := 0; i <= len(data); i++ {
			msg, err := r.ReadFrame()
			if err != nil {
				var fe *FrameError
				if errors.As(err, &fe) {
					continue
				}
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(msg) > r.MaxFrameBytes {
				t.Fatalf("frame of %d bytes over the %d limit", len(msg), r.MaxFrameBytes)
			}
			if bytes.IndexByte(msg, StartBlock) >= 0 {
				t.Fatal("a frame holds a start block")
			}
			total += len(msg)
		}
		if total > len(data) {
			t.Fatal("frames hold more bytes than the input")
		}
	})
}

// A large frame is read whole through the small read buffer, and its
// buffer is not kept for the connection's life: the next frame starts
// small again.
func TestReaderLargeFrameThenSmall(t *testing.T) {
	large := bytes.Repeat([]byte("OBX|1|ED|PDF||"), 200<<10/14)
	var stream []byte
	stream = AppendFrame(stream, large)
	stream = AppendFrame(stream, []byte("MSH|small"))
	r := NewReader(bytes.NewReader(stream))
	r.MaxFrameBytes = 1 << 20
	got, err := r.ReadFrame()
	if err != nil || !bytes.Equal(got, large) {
		t.Fatalf("large frame: %d bytes, %v", len(got), err)
	}
	got, err = r.ReadFrame()
	if err != nil || string(got) != "MSH|small" {
		t.Fatalf("small frame: %q, %v", got, err)
	}
	if cap(r.buf) > retainBytes {
		t.Fatalf("the large frame's buffer (%d bytes) is still held", cap(r.buf))
	}
}
