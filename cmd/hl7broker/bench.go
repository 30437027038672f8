package main

import (
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/hl7broker/hl7broker/internal/loadtest"
	"github.com/spf13/cobra"
)

// benchFlags are bench's flags: loadtest's options and what the CLI
// decides (output, which run, TLS files).
type benchFlags struct {
	loadtest.Options
	tls     clientTLSFlags
	json    bool
	compare bool
}

func newBenchCmd() *cobra.Command {
	var o benchFlags
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
run and with the same connections and messages, four stages:
  raw-mllp       an MLLP server in bench answering a fixed ACK (no parse,
                 no store): the ceiling of MLLP on this machine
  raw-jetstream  one synchronous JetStream publish per message, over TCP
                 loopback, at the broker's durability: on an embedded
                 server in a temporary directory that syncs every write
                 under fsync, or on the --nats cluster with --replicas
  broker         serve in a process of its own, loaded over MLLP
  no-history     the same with history.enabled false (no journey events,
                 no search index): what history costs
It prints each rate and latency, the broker's ratio to each ceiling, and
the broker's CPU time and peak RSS. A shared machine is noisy: --rounds N
runs the last two stages N times each, alternately, and reports medians. The built-in config has one listener
and one route to bench's own sink (per-patient order over 8 partitions),
so every delivery is checked as with --sink; with --config FILE the
broker's data_dir and admin address are replaced by temporary ones, bench
sends to its first listener and deliveries go where the config says.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "", "receiver's HOST:PORT, or a comma-separated list to spread over and fail over to (required without --compare)")
	o.tls.register(f)
	f.IntVar(&o.Connections, "connections", 1, "connections, each sending lock-step")
	f.IntVar(&o.Messages, "messages", 0, "messages to send in all (0: until --duration)")
	f.DurationVar(&o.Duration, "duration", 0, "how long to send (0: until --messages)")
	f.Float64Var(&o.Rate, "rate", 0, "messages per second over all connections at most (0: as fast as ACKs come back)")
	f.StringVar(&o.RouteScript, "route-script", "", "with --compare's built-in config: a script step on its route (JavaScript), to measure what scripts cost")
	f.StringVar(&o.Template, "template", "adt", "built-in message when no FILE is given: adt or oru")
	f.IntVar(&o.Patients, "patients", 1000, "distinct patient IDs in built-in messages")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long to wait for each ACK")
	f.DurationVar(&o.Progress, "progress", time.Second, "how often to print a progress line (0: never)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&o.Sink, "sink", "", "run an MLLP endpoint on HOST:PORT for the broker's deliveries and check them")
	f.DurationVar(&o.SinkWait, "sink-wait", time.Minute, "how long to wait, after sending, for every acked message to be delivered")
	f.BoolVar(&o.compare, "compare", false, "start a broker and measure it against the raw-MLLP and raw-JetStream ceilings (see above)")
	f.StringVar(&o.Config, "config", "", "with --compare: the broker's config (default: a built-in one, see above)")
	f.StringVar(&o.Durability, "durability", "fsync", "with --compare and the built-in config: fsync or os")
	f.StringVar(&o.NATS, "nats", "", "with --compare and the built-in config: external NATS URLs (default: embedded)")
	f.IntVar(&o.Replicas, "replicas", 1, "with --compare, --nats and the built-in config: stream replicas")
	f.DurationVar(&o.Hold, "hold", 0, "keep every connection open, idle, this long after the last message (to measure the receiver's memory per connection)")
	f.IntVar(&o.Rounds, "rounds", 1, "with --compare: run the broker with and without history this many times each, alternately, and report medians")
	return cmd
}

func runBench(cmd *cobra.Command, args []string, o benchFlags) error {
	var err error
	if o.TLS, err = o.tls.config(); err != nil {
		return err
	}
	if len(args) > 0 {
		msgs, failures := readMessages(cmd, args)
		if failures > 0 || len(msgs) == 0 {
			return errors.New("no messages to send from the files given")
		}
		for _, m := range msgs {
			o.Raw = append(o.Raw, m.Raw)
		}
	}
	if o.compare {
		o.Serve = func(file string) *exec.Cmd {
			exe, err := os.Executable()
			if err != nil {
				exe = os.Args[0]
			}
			return exec.Command(exe, "serve", "--config", file)
		}
		r, err := loadtest.Compare(cmd.Context(), o.Options, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		loadtest.PrintCompare(cmd.OutOrStdout(), r, o.json)
		if !r.OK() {
			return exitError{1}
		}
		return nil
	}
	res, err := loadtest.Bench(cmd.Context(), o.Options, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	loadtest.Print(cmd.OutOrStdout(), res, o.json)
	if !res.OK() {
		return exitError{1}
	}
	return nil
}
