//go:build !linux

package mllp

import "net"

// stale cannot peek here: a dead connection is found by the round trip.
func stale(net.Conn) bool { return false }
