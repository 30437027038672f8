package store

import (
	"sync"
	"time"
)

// KeepInProgress tells the server, every d until stop is called, that
// msgs are still being worked on, so that a group that takes long (a slow
// store) is not handed out again meanwhile. A group done within d costs a
// timer and nothing else.
func KeepInProgress[M interface{ InProgress() error }](msgs []M, d time.Duration) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock() // the callback waits for t
	defer mu.Unlock()
	t = time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		for _, m := range msgs {
			_ = m.InProgress()
		}
		t.Reset(d)
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}
