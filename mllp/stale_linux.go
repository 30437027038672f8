package mllp

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// stale says whether an idle connection can no longer carry a message:
// its peer closed it (a receiver that restarted) or sent bytes no one
// asked for. It peeks at the socket without waiting or consuming
// anything, so a message is never written to a connection already dead:
// one written there is lost with the connection, costs a retry, and may
// reach the receiver twice. Under TLS it peeks beneath it: a
// close_notify is bytes no one asked for.
func stale(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	dead := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case n > 0: // bytes before any request: out of step
			dead = true
		case err == nil: // n == 0: the peer closed its end
			dead = true
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default: // reset, or any other error of the socket
			dead = true
		}
		return true // never wait
	})
	return dead
}
