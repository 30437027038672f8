package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/cobra"
)

type benchOptions struct {
	addr        string
	tls         clientTLSFlags
	connections int
	messages    int
	duration    time.Duration
	rate        float64
	template    string
	patients    int
	timeout     time.Duration
	progress    time.Duration
	json        bool
	sink        string
	sinkWait    time.Duration
	compare     bool
	config      string
	durability  string
	nats        string
	replicas    int
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench (--addr HOST:PORT[,HOST:PORT...] | --compare) [flags] [FILE...]",
		Short: "Load an MLLP receiver and measure ACK rate and latency",
		Long: `Bench opens --connections MLLP connections, each lock-step as real senders
are (the next message only after the ACK), and sends --messages messages or
for --duration, as fast as ACKs come back or at --rate messages per second
over all connections. Messages come from the FILEs given, or from a built-in
ADT^A08 or ORU^R01 (--template) of about 1 KB; each gets a unique control ID
(MSH-10), and a template's patient ID (PID-3.1) is spread over --patients
values. While it runs it prints a progress line each --progress to stderr;
then throughput, ACK latency (p50, p90, p99, max), ACK codes and errors, or
with --json the same as one JSON object. It exits 1 if any message got no
ACK or a negative one.

--addr may list several receivers (two brokers, say): connections are
spread over them, and a connection whose message gets no ACK moves to the
next receiver for its next message, as a sender with a failover list does.

With --sink HOST:PORT it also runs an MLLP endpoint there (point the
broker's destination at it) that answers AA and records what arrives. After
sending it waits up to --sink-wait for every acknowledged message, then
reports how many were delivered, lost, duplicated (delivered again: allowed
by at-least-once, reported), out of order (per patient: a message acked
before another was sent must arrive first) and unknown. It exits 1 if any
was lost or out of order.

--compare needs no --addr: it starts its own broker and measures, in one
run and with the same connections and messages, three stages:
  raw-mllp       an MLLP server in bench answering a fixed ACK (no parse,
                 no store): the ceiling of MLLP on this machine
  raw-jetstream  one synchronous JetStream publish per message, over TCP
                 loopback, at the broker's durability: on an embedded
                 server in a temporary directory that syncs every write
                 under fsync, or on the --nats cluster with --replicas
  broker         serve in a process of its own, loaded over MLLP
It prints each rate and latency, the broker's ratio to each ceiling, and
the broker's CPU time and peak RSS. The built-in config has one listener
and one route to bench's own sink (per-patient order over 8 partitions),
so every delivery is checked as with --sink; with --config FILE the
broker's data_dir and admin address are replaced by temporary ones, bench
sends to its first listener and deliveries go where the config says.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "receiver's HOST:PORT, or a comma-separated list to spread over and fail over to (required without --compare)")
	o.tls.register(f)
	f.IntVar(&o.connections, "connections", 1, "connections, each sending lock-step")
	f.IntVar(&o.messages, "messages", 0, "messages to send in all (0: until --duration)")
	f.DurationVar(&o.duration, "duration", 0, "how long to send (0: until --messages)")
	f.Float64Var(&o.rate, "rate", 0, "messages per second over all connections at most (0: as fast as ACKs come back)")
	f.StringVar(&o.template, "template", "adt", "built-in message when no FILE is given: adt or oru")
	f.IntVar(&o.patients, "patients", 1000, "distinct patient IDs in built-in messages")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	f.DurationVar(&o.progress, "progress", time.Second, "how often to print a progress line (0: never)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&o.sink, "sink", "", "run an MLLP endpoint on HOST:PORT for the broker's deliveries and check them")
	f.DurationVar(&o.sinkWait, "sink-wait", time.Minute, "how long to wait, after sending, for every acked message to be delivered")
	f.BoolVar(&o.compare, "compare", false, "start a broker and measure it against the raw-MLLP and raw-JetStream ceilings (see above)")
	f.StringVar(&o.config, "config", "", "with --compare: the broker's config (default: a built-in one, see above)")
	f.StringVar(&o.durability, "durability", "fsync", "with --compare and the built-in config: fsync or os")
	f.StringVar(&o.nats, "nats", "", "with --compare and the built-in config: external NATS URLs (default: embedded)")
	f.IntVar(&o.replicas, "replicas", 1, "with --compare, --nats and the built-in config: stream replicas")
	return cmd
}

// benchResult is what bench prints at the end (--json: as is).
type benchResult struct {
	Connections int            `json:"connections"`
	Messages    int64          `json:"messages"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	LatencyMS   latencies      `json:"latency_ms"`
	Acks        map[string]int `json:"acks"`
	Errors      int64          `json:"errors"` // no ACK: connection errors, timeouts, replies that are not ACKs or whose MSA-2 is not the control ID sent
	Sink        *sinkReport    `json:"sink,omitempty"`
}

type latencies struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func runBench(cmd *cobra.Command, args []string, o benchOptions) error {
	if o.connections < 1 || (o.messages <= 0 && o.duration <= 0) || o.patients < 1 {
		return errors.New("bench needs --connections of at least 1, --messages or --duration, and --patients of at least 1")
	}
	if o.compare {
		return runCompare(cmd, args, o)
	}
	if o.addr == "" {
		return errors.New("bench needs --addr (or --compare, which starts its own broker)")
	}
	tlsCfg, err := o.tls.config()
	if err != nil {
		return err
	}
	next, err := messageSource(cmd, args, o)
	if err != nil {
		return err
	}
	var sk *sink
	if o.sink != "" {
		if sk, err = startSink(o.sink); err != nil {
			return fmt.Errorf("--sink: %w", err)
		}
		defer sk.close()
	}
	res := load(cmd.Context(), o, cmd.ErrOrStderr(), mllpConns(o.addr, tlsCfg, o.timeout), next, sk)
	printBench(cmd.OutOrStdout(), res, o.json)
	if !res.ok() {
		return exitError{1}
	}
	return nil
}

// ok: every message got a positive ACK and the sink, if any, found
// nothing lost or out of order.
func (r benchResult) ok() bool {
	return r.Errors == 0 && r.Acks["AE"]+r.Acks["AR"]+r.Acks["CE"]+r.Acks["CR"] == 0 &&
		(r.Sink == nil || r.Sink.Lost+r.Sink.OutOfOrder == 0)
}

// benchConn is one lock-step connection: send returns the ACK code.
type benchConn struct {
	send  func(ctx context.Context, m benchMessage) (code string, err error)
	close func()
}

// errStaleAck is an ACK whose MSA-2 is not the control ID just sent.
var errStaleAck = errors.New("ACK's MSA-2 is not the control ID sent")

// mllpConns dials MLLP connections spread over addr's comma-separated
// receivers; a connection whose message gets no ACK moves to the next.
func mllpConns(addr string, tlsCfg *tls.Config, timeout time.Duration) func(k int) benchConn {
	addrs := strings.Split(strings.ReplaceAll(addr, " ", ""), ",")
	return func(k int) benchConn {
		at := k
		dial := func() *mllp.Client {
			return &mllp.Client{Addr: addrs[at%len(addrs)], TLSConfig: tlsCfg, ReplyTimeout: timeout, MaxBackoff: time.Second}
		}
		c := dial()
		return benchConn{
			send: func(ctx context.Context, m benchMessage) (string, error) {
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

// load sends from o.connections lock-step connections and measures. With
// a sink, positively acknowledged messages are recorded for it and the
// result waits for their delivery.
func load(ctx context.Context, o benchOptions, progress io.Writer, dial func(k int) benchConn, next func(int64) benchMessage, sk *sink) benchResult {
	acked := map[string]ackedMsg{} // by control ID, for the sink
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var tokens <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
		defer t.Stop()
		tokens = t.C
	}

	var (
		seq, sent, errs atomic.Int64
		mu              sync.Mutex
		lat             []time.Duration
		acks            = map[string]int{}
		wg              sync.WaitGroup
	)
	start := time.Now()
	stopProgress := startProgress(progress, o.progress, start, &sent, &errs)
	for k := range o.connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(k)
			defer c.close()
			var mine []time.Duration
			codes := map[string]int{}
			for ctx.Err() == nil {
				n := seq.Add(1)
				if o.messages > 0 && n > int64(o.messages) {
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
				if err != nil && (ctx.Err() != nil || (o.duration > 0 && !time.Now().Before(start.Add(o.duration)))) {
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
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	res := benchResult{Connections: o.connections, Messages: sent.Load(), Seconds: elapsed.Seconds(),
		PerSecond: float64(sent.Load()) / elapsed.Seconds(), LatencyMS: percentiles(lat), Acks: acks, Errors: errs.Load()}
	if sk != nil {
		sk.wait(acked, time.Now().Add(o.sinkWait))
		rep := sk.report(acked)
		res.Sink = &rep
	}
	return res
}

// benchMessage is one message to send, with what the sink checks by.
type benchMessage struct {
	data               []byte
	controlID, patient string
}

// messageSource returns message n (1-based): from the files, in turn, or
// the template; each with its own control ID.
func messageSource(cmd *cobra.Command, args []string, o benchOptions) (func(n int64) benchMessage, error) {
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36) // resends of an earlier run are not deduplicated
	if len(args) > 0 {
		msgs, failures := readOutgoing(cmd, args)
		if failures > 0 || len(msgs) == 0 {
			return nil, errors.New("no messages to send from the files given")
		}
		var parsed []*hl7.Message
		for _, m := range msgs {
			pm, err := hl7.Parse(m.raw)
			if err != nil {
				return nil, fmt.Errorf("%s #%d: %w", m.file, m.index, err)
			}
			parsed = append(parsed, pm)
		}
		var mu sync.Mutex // a Message is not safe for concurrent edits
		patientPath := hl7.MustParsePath("PID-3.1")
		return func(n int64) benchMessage {
			mu.Lock()
			defer mu.Unlock()
			m := parsed[int(n-1)%len(parsed)].Clone()
			id := runID + "-" + strconv.FormatInt(n, 10)
			_ = m.Set(hl7.PathMSH10, id)
			return benchMessage{data: m.AppendTerminated(nil, "\r"), controlID: id, patient: m.ValueString(patientPath)}
		}, nil
	}
	tmpl, ok := benchTemplates[o.template]
	if !ok {
		return nil, fmt.Errorf("--template %q is not adt or oru", o.template)
	}
	return func(n int64) benchMessage {
		patient := fmt.Sprintf("P%06d", n%int64(o.patients))
		id := runID + "-" + strconv.FormatInt(n, 10)
		return benchMessage{data: []byte(fmt.Sprintf(tmpl, time.Now().UTC().Format("20060102150405"), id, patient)), controlID: id, patient: patient}
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
func startProgress(w io.Writer, interval time.Duration, start time.Time, sent, errs *atomic.Int64) func() {
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
				fmt.Fprintf(w, "%6.1fs  sent %d  errors %d  %.0f msg/s\n", now.Sub(start).Seconds(), n, errs.Load(),
					float64(n-last)/now.Sub(lastAt).Seconds())
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(stop); <-done }
}

func percentiles(lat []time.Duration) latencies {
	if len(lat) == 0 {
		return latencies{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(lat[len(lat)-1].Microseconds()) / 1000}
}

func printBench(w io.Writer, r benchResult, asJSON bool) {
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
	if s := r.Sink; s != nil {
		fmt.Fprintf(w, "sink: delivered %d, lost %d, duplicated %d, out of order %d, unknown %d\n",
			s.Delivered, s.Lost, s.Duplicates, s.OutOfOrder, s.Unknown)
	}
}
