//go:build unix

package mllp

import (
	"net"
	"syscall"
)

// readableWaiter returns a function that blocks until conn has bytes to
// read (or its deadline passes, or it is closed) without reading them;
// nil when conn cannot (a TLS connection, say), which then keeps its
// buffers while idle.
//
// It peeks at one byte without taking it (MSG_PEEK, non-blocking): bytes
// already there end the wait at once; none, and the runtime's network
// poller waits for some. Asking the poller without looking first would
// miss bytes that arrived before the wait began.
func readableWaiter(conn net.Conn) func() error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var one [1]byte
	return func() error {
		return rc.Read(func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return err != syscall.EAGAIN && err != syscall.EINTR // readable, at its end, or failed: the read will say
		})
	}
}
