package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Under sustained ingest, no destination goes more than 2 s without a
// delivery while it has messages queued. Before the pull heartbeat was
// shortened, a worker's consumer sat 27-30 s at a time with no pull
// request open on the server (see routing's pullOptions).
func TestNoDeliveryStallUnderSustainedIngest(t *testing.T) {
	if raceEnabled {
		t.Skip("timing-sensitive load test: skipped under -race")
	}
	load := 60 * time.Second
	if testing.Short() {
		load = 15 * time.Second
	}
	const maxGap = 2 * time.Second
	fifo, keyed := newEndpoint(t, "", nil), newEndpoint(t, "", nil)
	var routed sync.Map // destination -> *atomic.Int64
	countRouted := func(dests []string) {
		for _, d := range dests {
			v, _ := routed.LoadOrStore(d, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
	}
	cfg := baseConfig(t)
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"fifo", "keyed"}}}
	cfg.Destinations = []config.DestinationConfig{
		{Name: "fifo", Type: "mllp", Options: &delivery.MLLPOptions{Addr: fifo.addr}},
		{Name: "keyed", Type: "mllp", Options: &delivery.MLLPOptions{Addr: keyed.addr}, Ordering: "key", PartitionBy: "PID-3.1", Partitions: 4},
	}
	p := startPipelineWithHooks(t, cfg, Hooks{OnRouted: func(_ uint64, d []string) { countRouted(d) }})

	ctx, cancel := context.WithTimeout(context.Background(), load)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &mllp.Client{Addr: p.Addr("lab").String()}
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				msg := strings.Replace(oruMsg(fmt.Sprintf("S%d-%d", s, i)), "P7^", fmt.Sprintf("P%d^", i%50), 1)
				reply, err := c.Send(ctx, []byte(msg))
				if err != nil {
					continue // the load ending mid-send
				}
				if ack, err := hl7.ParseAck(reply); err == nil && ack.Positive() {
					sent.Add(1)
				}
			}
		}()
	}

	// Every 50 ms: a destination has made progress when its delivered
	// count rose or nothing is queued for it.
	type watch struct {
		last     time.Time
		worst    time.Duration
		prevDone int64
	}
	watches := map[string]*watch{"fifo": {last: time.Now()}, "keyed": {last: time.Now()}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		now := <-tick.C
		for dest, w := range watches {
			done := p.count(dest, "delivered")
			var queued int64
			if v, ok := routed.Load(dest); ok {
				queued = v.(*atomic.Int64).Load() - done
			}
			if done > w.prevDone || queued <= 0 {
				w.last, w.prevDone = now, done
			}
			w.worst = max(w.worst, now.Sub(w.last))
		}
	}
	wg.Wait()
	for dest, w := range watches {
		t.Logf("%s: %d delivered during %v of load, longest time without a delivery while queued %v", dest, w.prevDone, load, w.worst.Round(time.Millisecond))
		assert.LessOrEqual(t, w.worst, maxGap, "%s went %v without a delivery while messages were queued", dest, w.worst)
		assert.Positive(t, w.prevDone, "%s delivered during the load", dest)
	}
	require.Positive(t, sent.Load())
}
