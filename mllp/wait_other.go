//go:build !unix

package mllp

import "net"

// readableWaiter: elsewhere an idle connection keeps its buffers.
func readableWaiter(net.Conn) func() error { return nil }
