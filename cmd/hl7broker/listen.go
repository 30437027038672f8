package main

import (
	"fmt"
	"net"
	"time"

	"github.com/hl7broker/hl7broker/feed"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/cobra"
)

type listenOptions struct {
	addr            string
	out             string
	ack             string
	delay           time.Duration
	maxMessageBytes int
	tls             feed.ServerTLS
}

func newListenCmd() *cobra.Command {
	var o listenOptions
	cmd := &cobra.Command{
		Use:   "listen --addr HOST:PORT [--out DIR] [--ack CODE] [--delay D]",
		Short: "Run a test MLLP endpoint that acknowledges every message",
		Long:  help("listen"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runListen(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:2575", "HOST:PORT to listen on (port 0: any free port)")
	f.StringVar(&o.out, "out", "", "folder to write each received message into")
	f.StringVar(&o.ack, "ack", "auto", "ACK code: auto, AA, AE, AR, CA, CE or CR")
	f.DurationVar(&o.delay, "delay", 0, "wait this long before each ACK")
	f.IntVar(&o.maxMessageBytes, "max-message-bytes", mllp.DefaultMaxFrameBytes, "largest message accepted")
	o.tls.Register(f)
	return cmd
}

func runListen(cmd *cobra.Command, o listenOptions) error {
	outcome, mode, err := feed.AckChoice(o.ack)
	if err != nil {
		return err
	}
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	tlsCfg, err := o.tls.Config()
	if err != nil {
		return err
	}
	h := &feed.Endpoint{Out: o.out, Outcome: outcome, Mode: mode, Delay: o.delay, Log: log}
	return h.Listen(cmd.Context(), o.addr, tlsCfg, o.maxMessageBytes, func(a net.Addr) {
		fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", a)
	})
}
