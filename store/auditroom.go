package store

import (
	"fmt"
	"math"
)

// The audit trail may not take the last of the disk: intake needs it. An
// audit entry is stored only while the data folder's file system has more
// free than AuditReserve of it; below that, entries are refused, so views
// of content and changes are refused too (no audit entry, no content),
// while messages are still taken, stored and delivered into the reserve.
const (
	auditReserveShare = 0.05     // of the file system's size
	auditReserveMin   = 16 << 20 // bytes
	auditReserveMax   = 1 << 30  // bytes
)

// AuditReserve is the free space below which no audit entry is stored on
// a file system of size bytes: 5% of it, at least 16 MiB, at most 1 GiB.
func AuditReserve(size uint64) uint64 {
	r := uint64(math.Round(float64(size) * auditReserveShare))
	return min(max(r, auditReserveMin), auditReserveMax)
}

// AuditRoom says whether an audit entry may be stored now: an error when
// the embedded store's disk is down to the reserve. With an external NATS
// the servers' own limits stand, and it says nil.
func (n *NATS) AuditRoom() error {
	if n.server == nil || n.storeDir == "" {
		return nil
	}
	free, size, err := diskSpace(n.storeDir)
	if err != nil {
		return nil // cannot tell: the store answers for itself
	}
	if reserve := AuditReserve(size); free < reserve {
		return fmt.Errorf("the data folder's disk has %d bytes free, below the %d kept for intake: the audit trail stores no entry until there is more room", free, reserve)
	}
	return nil
}

// DiskSpace is the embedded store's file system: bytes free for the
// store and its size; size 0 when not known (an external NATS keeps the
// data on its own machines).
func (n *NATS) DiskSpace() (free, size uint64) {
	if n.server == nil || n.storeDir == "" {
		return 0, 0
	}
	free, size, err := diskSpace(n.storeDir)
	if err != nil || size == math.MaxUint64 {
		return 0, 0
	}
	return free, size
}
