package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Syncer makes writes durable in groups: Sync returns once a flush that
// began after Sync was called has finished, so everything written before
// the call is on disk. Callers waiting at the same moment share one
// flush: with many senders, one disk sync acknowledges all of them (group
// commit), without a timer and without adding latency for a lone sender.
//
// A flush that fails fails every Sync waiting on it, and every Sync whose
// window overlaps it: after a failed write-back the kernel may have
// dropped the data, and a later successful flush does not bring it back.
// Safe for concurrent use; Close stops it.
type Syncer struct {
	flush func() error // flushes everything written so far to disk

	mu      sync.Mutex
	started uint64        // flushes begun
	done    uint64        // last flush finished
	failed  uint64        // last flush that failed (0: none)
	failErr error         // its error
	changed chan struct{} // closed and replaced when a flush finishes
	wake    chan struct{} // a Sync is waiting for a flush to begin
	stop    chan struct{}
	stopped chan struct{}
	flushes uint64        // flushes run, for tests and metrics
	busy    time.Duration // time spent flushing
	waiting int           // Sync calls waiting

	closeFile func() error // the store directory syncfs flushes through, if any
	closeOnce sync.Once
}

// NewSyncer starts a syncer over flush.
func NewSyncer(flush func() error) *Syncer {
	s := &Syncer{flush: flush, changed: make(chan struct{}), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.loop()
	return s
}

// Sync waits until everything written before the call is on disk, or ctx
// ends, or the syncer is closed.
func (s *Syncer) Sync(ctx context.Context) error { return s.sync(ctx, 0) }

// SyncWithin is Sync for a caller that can wait a little: it begins no
// flush of its own until d has passed, so a flush that another caller
// begins meanwhile serves it too. The router uses it: its flush used to
// begin while a sender's was running, and the sender's next message then
// waited for both (two flushes per message with one sender). Now, while
// messages arrive, the router rides on the senders' flushes.
func (s *Syncer) SyncWithin(ctx context.Context, d time.Duration) error { return s.sync(ctx, d) }

func (s *Syncer) sync(ctx context.Context, delay time.Duration) error {
	s.mu.Lock()
	target := s.started + 1 // the first flush to begin after this call
	changed := s.changed
	s.waiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	var late <-chan time.Time
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		late = t.C
	} else {
		s.wakeUp()
	}
	for {
		select {
		case <-late:
			s.wakeUp()
			continue
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the disk: %w", ctx.Err())
		case <-s.stopped:
			return errSyncerClosed
		}
		s.mu.Lock()
		done, failed, failErr := s.done, s.failed, s.failErr
		changed = s.changed
		s.mu.Unlock()
		if done >= target {
			if failed >= target {
				return fmt.Errorf("flushing to disk: %w", failErr)
			}
			return nil
		}
	}
}

// wakeUp asks the loop for a flush. A wake-up already pending is enough:
// that flush begins after this call too.
func (s *Syncer) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var errSyncerClosed = fmt.Errorf("flushing to disk: stopped")

func (s *Syncer) loop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		select { // both ready: stopping wins, no flush is begun after Close
		case <-s.stop:
			return
		default:
		}
		s.mu.Lock()
		s.started++
		gen := s.started
		s.mu.Unlock()
		start := time.Now()
		err := s.flush()
		took := time.Since(start)
		s.mu.Lock()
		s.done, s.flushes, s.busy = gen, s.flushes+1, s.busy+took
		if err != nil {
			s.failed, s.failErr = gen, err
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// Flushes is how many flushes have run and the time they took.
func (s *Syncer) Flushes() (n uint64, busy time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushes, s.busy
}

// Waiting is how many Sync calls are waiting.
func (s *Syncer) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Close stops the syncer after the flush in progress, if any. Waiting
// Sync calls fail.
func (s *Syncer) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		if s.closeFile != nil {
			_ = s.closeFile()
		}
	})
}
