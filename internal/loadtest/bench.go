package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/pflag"
)

// Options say what to send, how, and where.
type Options struct {
	Addr        string      // receivers, comma-separated
	TLS         *tls.Config // nil: plain TCP
	Connections int         // lock-step connections
	Messages    int         // in all (0: until Duration)
	Duration    time.Duration
	Rate        float64  // per second over all connections (0: as fast as ACKs come)
	Raw         [][]byte // messages to send in turn; none: Template
	Template    string   // adt or oru
	Patients    int      // distinct PID-3.1 values in Template messages
	Timeout     time.Duration
	Progress    time.Duration // a progress line this often (0: none)
	Sink        string        // HOST:PORT of a sink for the broker's deliveries
	Hold        time.Duration // keep every connection open this long after the last message (to measure idle memory)
	SinkWait    time.Duration

	// Compare only.
	Config string // the broker's config file ("": built in)
	// RouteScript, with the built-in config, is a script step on its
	// route: what a script costs the broker.
	RouteScript string
	Durability  string // fsync or os, with the built-in config
	NATS        string // external NATS URLs, with the built-in config
	Replicas    int
	Rounds      int // the broker with and without history, alternately, this many times each (0: once)
	// Serve starts the broker on a config file, as a child process;
	// nil: this executable's "serve --config FILE" (hl7broker bench).
	Serve func(configFile string) *exec.Cmd
}

// Flags registers bench's flags for o, with their defaults (the CLI's
// hl7broker bench).
func (o *Options) Flags(f *pflag.FlagSet) {
	f.StringVar(&o.Addr, "addr", "", "receiver's HOST:PORT, or a comma-separated list to spread over and fail over to (required without --compare)")
	f.IntVar(&o.Connections, "connections", 1, "connections, each sending lock-step")
	f.IntVar(&o.Messages, "messages", 0, "messages to send in all (0: until --duration)")
	f.DurationVar(&o.Duration, "duration", 0, "how long to send (0: until --messages)")
	f.Float64Var(&o.Rate, "rate", 0, "messages per second over all connections at most (0: as fast as ACKs come back)")
	f.StringVar(&o.RouteScript, "route-script", "", "with --compare's built-in config: a script step on its route (JavaScript), to measure what scripts cost")
	f.StringVar(&o.Template, "template", "adt", "built-in message when no FILE is given: adt or oru")
	f.IntVar(&o.Patients, "patients", 1000, "distinct patient IDs in built-in messages")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	f.DurationVar(&o.Progress, "progress", time.Second, "how often to print a progress line (0: never)")
	f.StringVar(&o.Sink, "sink", "", "run an MLLP endpoint on HOST:PORT for the broker's deliveries and check them")
	f.DurationVar(&o.SinkWait, "sink-wait", time.Minute, "how long to wait, after sending, for every acked message to be delivered")
	f.StringVar(&o.Config, "config", "", "with --compare: the broker's config (default: a built-in one, see above)")
	f.StringVar(&o.Durability, "durability", "fsync", "with --compare and the built-in config: fsync or os")
	f.StringVar(&o.NATS, "nats", "", "with --compare and the built-in config: external NATS URLs (default: embedded)")
	f.IntVar(&o.Replicas, "replicas", 1, "with --compare, --nats and the built-in config: stream replicas")
	f.DurationVar(&o.Hold, "hold", 0, "keep every connection open, idle, this long after the last message (to measure the receiver's memory per connection)")
	f.IntVar(&o.Rounds, "rounds", 1, "with --compare: run the broker with and without history this many times each, alternately, and report medians")
}

// serve is Options.Serve, or this executable's serve command.
func (o *Options) serve(file string) *exec.Cmd {
	if o.Serve != nil {
		return o.Serve(file)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "serve", "--config", file)
}

// Result is what bench prints at the end (--json: as is).
type Result struct {
	Connections int            `json:"connections"`
	Messages    int64          `json:"messages"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	LatencyMS   Latencies      `json:"latency_ms"`
	Acks        map[string]int `json:"acks"`
	Errors      int64          `json:"errors"` // no ACK: connection errors, timeouts, replies that are not ACKs or whose MSA-2 is not the control ID sent
	Sink        *SinkReport    `json:"sink,omitempty"`
}

type Latencies struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Bench loads o.Addr as o says and measures; with o.Sink it checks the
// broker's deliveries too. Progress lines go to progress.
func Bench(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	if o.Connections < 1 || (o.Messages <= 0 && o.Duration <= 0) || o.Patients < 1 {
		return Result{}, errors.New("bench needs --connections of at least 1, --messages or --duration, and --patients of at least 1")
	}
	if o.Addr == "" {
		return Result{}, errors.New("bench needs --addr (or --compare, which starts its own broker)")
	}
	next, err := messageSource(o)
	if err != nil {
		return Result{}, err
	}
	var sk *sink
	if o.Sink != "" {
		if sk, err = startSink(o.Sink); err != nil {
			return Result{}, fmt.Errorf("--sink: %w", err)
		}
		defer sk.close()
	}
	return load(ctx, o, progress, mllpConns(o.Addr, o.TLS, o.Timeout), next, sk), nil
}

// ended says whether ctx's deadline has passed, even before its timer
// has cancelled it: a socket given that deadline fails at that instant.
func ended(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// OK: every message got a positive ACK and the sink, if any, found
// nothing lost or out of order.
func (r Result) OK() bool {
	return r.Errors == 0 && r.Acks["AE"]+r.Acks["AR"]+r.Acks["CE"]+r.Acks["CR"] == 0 &&
		(r.Sink == nil || r.Sink.Lost+r.Sink.OutOfOrder == 0)
}

// conn is one lock-step connection: send returns the ACK code.
type conn struct {
	send  func(ctx context.Context, m message) (code string, err error)
	close func()
}

// errStaleAck is an ACK whose MSA-2 is not the control ID just sent.
var errStaleAck = errors.New("ACK's MSA-2 is not the control ID sent")

// mllpConns dials MLLP connections spread over addr's comma-separated
// receivers; a connection whose message gets no ACK moves to the next.
func mllpConns(addr string, tlsCfg *tls.Config, timeout time.Duration) func(k int) conn {
	addrs := strings.Split(strings.ReplaceAll(addr, " ", ""), ",")
	return func(k int) conn {
		at := k
		dial := func() *mllp.Client {
			return &mllp.Client{Addr: addrs[at%len(addrs)], TLSConfig: tlsCfg, ReplyTimeout: timeout, MaxBackoff: time.Second}
		}
		c := dial()
		return conn{
			send: func(ctx context.Context, m message) (string, error) {
				reply, err := c.Send(ctx, m.data)
				if err != nil {
					if len(addrs) > 1 { // fail over: the next receiver for the next message
						c.Close()
						at++
						c = dial()
					}
					return "", err
				}
				ack, err := hl7.ParseAck(reply)
				if err != nil {
					return "", err
				}
				if ack.ControlID != m.controlID {
					// A stale ACK (a receiver out of step) acknowledges
					// another message: this one got no ACK of its own.
					return "", errStaleAck
				}
				return string(ack.Code), nil
			},
			close: func() { c.Close() },
		}
	}
}

// load sends from o.Connections lock-step connections and measures. With
// a sink, positively acknowledged messages are recorded for it and the
// result waits for their delivery.
func load(ctx context.Context, o Options, progress io.Writer, dial func(k int) conn, next func(int64) message, sk *sink) Result {
	acked := map[string]ackedMsg{} // by control ID, for the sink
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var tokens <-chan time.Time
	if o.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer t.Stop()
		tokens = t.C
	}

	var (
		seq, sent, errs atomic.Int64
		positive        atomic.Int64 // AA or CA: what the sink should receive
		mu              sync.Mutex
		lat             []time.Duration
		acks            = map[string]int{}
		wg              sync.WaitGroup
	)
	parent := ctx
	var sending sync.WaitGroup // every connection's sending, for Hold
	sending.Add(o.Connections)
	start := time.Now()
	var extra func() string
	var q *queueWatch
	if sk != nil {
		q = watchQueue(start, &positive, sk)
		extra = func() string {
			a, d := positive.Load(), sk.firsts.Load()
			return fmt.Sprintf("  delivered %d  queued %d", d, max(a-d, 0))
		}
	}
	stopProgress := startProgress(progress, o.Progress, start, &sent, &errs, extra)
	// When the last connection stopped sending: what arrived at the sink
	// before it arrived during the load. Taken by each connection as it
	// stops, so that nothing sent on after it counts.
	var lastSent struct {
		mu sync.Mutex
		at time.Time
	}
	for k := range o.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(k)
			defer c.close()
			defer func() {
				lastSent.mu.Lock()
				if now := time.Now(); now.After(lastSent.at) { // before the connection closes
					lastSent.at = now
				}
				lastSent.mu.Unlock()
				sending.Done()
				if o.Hold > 0 { // open, idle, until every connection has sent
					sending.Wait()
					select {
					case <-time.After(o.Hold):
					case <-parent.Done():
					}
				}
			}()
			var mine []time.Duration
			codes := map[string]int{}
			for ctx.Err() == nil {
				n := seq.Add(1)
				if o.Messages > 0 && n > int64(o.Messages) {
					break
				}
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						continue
					}
				}
				msg := next(n)
				t := time.Now()
				code, err := c.send(ctx, msg)
				if err != nil && (ctx.Err() != nil || ended(ctx)) {
					break // the run ended while waiting (the socket may see the deadline first): not counted
				}
				sent.Add(1)
				if err != nil {
					errs.Add(1)
					continue
				}
				ackedAt := time.Now()
				mine = append(mine, ackedAt.Sub(t))
				codes[code]++
				if sk != nil && (code == "AA" || code == "CA") {
					mu.Lock()
					acked[msg.controlID] = ackedMsg{patient: msg.patient, sentAt: t, ackedAt: ackedAt}
					mu.Unlock()
					positive.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range codes {
				acks[k] += v
			}
			mu.Unlock()
		}()
	}
	sentAll := make(chan time.Time, 1) // when every connection stopped sending
	go func() {
		sending.Wait()
		sentAll <- time.Now()
		if o.Hold > 0 {
			fmt.Fprintf(progress, "bench: holding %d connections open, idle, for %s\n", o.Connections, o.Hold)
		}
	}()
	wg.Wait()
	sentAt := <-sentAll
	elapsed := sentAt.Sub(start)
	var duringLoad int64
	if sk != nil {
		lastSent.mu.Lock()
		duringLoad = sk.arrivedBy(lastSent.at)
		lastSent.mu.Unlock()
	}
	if o.Hold > 0 {
		stopProgress()
	}

	res := Result{Connections: o.Connections, Messages: sent.Load(), Seconds: elapsed.Seconds(),
		PerSecond: float64(sent.Load()) / elapsed.Seconds(), LatencyMS: percentiles(lat), Acks: acks, Errors: errs.Load()}
	if sk != nil {
		sk.wait(acked, time.Now().Add(o.SinkWait))
		rep := sk.report(acked)
		rep.DuringLoad = duringLoad
		rep.DuringLoadPerSecond = float64(duringLoad) / elapsed.Seconds()
		sk.mu.Lock()
		last := sk.lastAt
		sk.mu.Unlock()
		if rep.Lost == 0 && last.After(sentAt) {
			rep.DrainSeconds = last.Sub(sentAt).Seconds()
		}
		if last.After(start) {
			rep.EndToEndPerSecond = float64(rep.Delivered) / last.Sub(start).Seconds()
		}
		rep.Queue, rep.MaxQueued = q.stop()
		res.Sink = &rep
	}
	if o.Hold <= 0 {
		stopProgress()
	}
	return res
}

// queueWatch samples the broker's backlog as bench sees it once a second.
type queueWatch struct {
	done    chan struct{}
	stopped chan struct{}
	samples []QueueSample
	max     int64
}

func watchQueue(start time.Time, acked *atomic.Int64, sk *sink) *queueWatch {
	q := &queueWatch{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(q.stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-q.done:
				return
			case now := <-t.C:
				a, d := acked.Load(), sk.firsts.Load()
				s := QueueSample{Seconds: now.Sub(start).Round(time.Second).Seconds(), Acked: a, Delivered: d, Queued: max(a-d, 0)}
				q.samples = append(q.samples, s)
				q.max = max(q.max, s.Queued)
			}
		}
	}()
	return q
}

// stop ends the sampling and returns the samples and the largest backlog.
func (q *queueWatch) stop() ([]QueueSample, int64) {
	close(q.done)
	<-q.stopped
	return q.samples, q.max
}

// message is one message to send, with what the sink checks by.
type message struct {
	data               []byte
	controlID, patient string
}

// messageSource returns message n (1-based): from the files, in turn, or
// the template; each with its own control ID.
func messageSource(o Options) (func(n int64) message, error) {
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36) // resends of an earlier run are not deduplicated
	if len(o.Raw) > 0 {
		var parsed []*hl7.Message
		for i, raw := range o.Raw {
			pm, err := hl7.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i+1, err)
			}
			parsed = append(parsed, pm)
		}
		var mu sync.Mutex // a Message is not safe for concurrent edits
		patientPath := hl7.MustParsePath("PID-3.1")
		return func(n int64) message {
			mu.Lock()
			defer mu.Unlock()
			m := parsed[int(n-1)%len(parsed)].Clone()
			id := runID + "-" + strconv.FormatInt(n, 10)
			_ = m.Set(hl7.PathMSH10, id)
			return message{data: m.AppendTerminated(nil, "\r"), controlID: id, patient: m.ValueString(patientPath)}
		}, nil
	}
	tmpl, ok := benchTemplates[o.Template]
	if !ok {
		return nil, fmt.Errorf("--template %q is not adt or oru", o.Template)
	}
	return func(n int64) message {
		patient := fmt.Sprintf("P%06d", n%int64(o.Patients))
		id := runID + "-" + strconv.FormatInt(n, 10)
		return message{data: []byte(fmt.Sprintf(tmpl, time.Now().UTC().Format("20060102150405"), id, patient)), controlID: id, patient: patient}
	}, nil
}

// benchTemplates are synthetic messages of about 1 KB: timestamp, control
// ID and patient ID are filled in. No real person's data.
var benchTemplates = map[string]string{
	"adt": "MSH|^~\\&|BENCH|HOSP|HL7BROKER|HOSP|%s||ADT^A08^ADT_A01|%s|P|2.5.1\r" +
		"EVN|A08|20260101000000\r" +
		"PID|1||%s^^^HOSP^MR||Testpatient^Bench^Q||19800101|F|||1 Test Street^^Springfield^IL^62701||(555)555-0100\r" +
		"PV1|1|I|W2^201^B^HOSP||||1234^Doctor^Test|||MED||||ADM|A0\r" +
		"NTE|1|L|" + strings.Repeat("load test note ", 40) + "\r",
	"oru": "MSH|^~\\&|BENCH|LAB|HL7BROKER|HOSP|%s||ORU^R01^ORU_R01|%s|P|2.5.1\r" +
		"PID|1||%s^^^LAB^MR||Testpatient^Bench||19800101|F\r" +
		"OBR|1|||CBC^Complete blood count^L\r" +
		"OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12.0-16.0|N|||F\r" +
		"OBX|2|NM|4544-3^Hematocrit^LN||39.5|%%|36-46|N|||F\r" +
		"OBX|3|NM|6690-2^WBC^LN||7.1|10*3/uL|4.5-11.0|N|||F\r" +
		"OBX|4|NM|777-3^Platelets^LN||250|10*3/uL|150-400|N|||F\r" +
		"NTE|1|L|" + strings.Repeat("load test note ", 35) + "\r",
}

// startProgress prints a line to w every interval; the returned func stops it.
// extra, if set, adds to each line.
func startProgress(w io.Writer, interval time.Duration, start time.Time, sent, errs *atomic.Int64, extra func() string) func() {
	if interval <= 0 {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n := sent.Load()
				more := ""
				if extra != nil {
					more = extra()
				}
				fmt.Fprintf(w, "%6.1fs  sent %d  errors %d  %.0f msg/s%s\n", now.Sub(start).Seconds(), n, errs.Load(),
					float64(n-last)/now.Sub(lastAt).Seconds(), more)
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(stop); <-done }
}

func percentiles(lat []time.Duration) Latencies {
	if len(lat) == 0 {
		return Latencies{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	return Latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(lat[len(lat)-1].Microseconds()) / 1000}
}

func Print(w io.Writer, r Result, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(r)
		return
	}
	fmt.Fprintf(w, "connections %d, messages %d in %.2fs: %.0f msg/s\n", r.Connections, r.Messages, r.Seconds, r.PerSecond)
	fmt.Fprintf(w, "ack latency: p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms\n", r.LatencyMS.P50, r.LatencyMS.P90, r.LatencyMS.P99, r.LatencyMS.Max)
	var codes []string
	for _, k := range slices.Sorted(maps.Keys(r.Acks)) {
		codes = append(codes, fmt.Sprintf("%s %d", k, r.Acks[k]))
	}
	fmt.Fprintf(w, "acks: %s\nerrors (no ACK, or an ACK for another message): %d\n", strings.Join(codes, ", "), r.Errors)
	printSink(w, r.Sink)
}

// printSink prints what the sink found and the end-to-end figures.
func printSink(w io.Writer, s *SinkReport) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "sink: delivered %d, lost %d, duplicated %d, out of order %d, unknown %d\n",
		s.Delivered, s.Lost, s.Duplicates, s.OutOfOrder, s.Unknown)
	fmt.Fprintf(w, "end to end: %.0f msg/s from first send to last delivery; %.0f msg/s delivered while sending (%d); drained %.1fs after sending; queue at most %d\n",
		s.EndToEndPerSecond, s.DuringLoadPerSecond, s.DuringLoad, s.DrainSeconds, s.MaxQueued)
	if len(s.Queue) > 0 {
		var b strings.Builder
		step := max(1, len(s.Queue)/20) // at most about 20 samples on the line
		for i := 0; i < len(s.Queue); i += step {
			fmt.Fprintf(&b, " %.0fs:%d", s.Queue[i].Seconds, s.Queue[i].Queued)
		}
		fmt.Fprintf(w, "queue over time (s:queued):%s\n", b.String())
	}
}
