package memory

import (
	"context"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// Memory the Go runtime keeps after a burst (heap freed but not yet
// returned, goroutine stacks grown while messages waited for the store)
// goes back to the operating system only slowly. A broker with a
// thousand idle connections held about 80 MB that way after one message
// each, 17 MB of it in use, and kept it. A Trimmer returns it once the
// broker is quiet: when less than idleAllocBytes was allocated since its
// last look and more than trimFreeBytes of heap is free but still held.
// (A forced collection then costs little: little is allocated.)
const (
	trimEvery      = 10 * time.Second
	idleAllocBytes = 1 << 20
	trimFreeBytes  = 1 << 20
)

// Trimmer decides when to give memory back; read and free are the
// runtime's unless a test sets them.
type Trimmer struct {
	read func() (allocated, heldFree uint64)
	free func()
	last uint64
}

func NewTrimmer() *Trimmer {
	samples := []rtmetrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	return &Trimmer{
		read: func() (uint64, uint64) {
			rtmetrics.Read(samples)
			return samples[0].Value.Uint64(), samples[1].Value.Uint64()
		},
		free: freeOSMemory,
	}
}

// tick looks once; it reports whether it gave memory back.
func (m *Trimmer) tick() bool {
	allocated, heldFree := m.read()
	idle := m.last != 0 && allocated-m.last < idleAllocBytes
	m.last = allocated
	if idle && heldFree > trimFreeBytes {
		m.free()
		return true
	}
	return false
}

func (m *Trimmer) Run(ctx context.Context) {
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.tick()
		}
	}
}

// stackShrinkCycles is how many collections freeOSMemory runs. A
// collection halves a goroutine stack that uses under a quarter of it:
// the stacks of idle connections, grown while their last message waited
// for the store, need several to come back down.
const stackShrinkCycles = 4

func freeOSMemory() {
	for range stackShrinkCycles - 1 {
		runtime.GC()
	}
	debug.FreeOSMemory()
}
