// Package testproc runs a server program a test starts itself (sshd,
// postgres): started, waited for until it answers, stopped and reaped.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Proc is one running server process.
type Proc struct {
	Cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts cmd.
func Start(cmd *exec.Cmd) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// WaitReady calls ready until it returns nil; it fails if the process
// exits first or limit passes, saying what it waited for (what) and the
// last answer.
func (p *Proc) WaitReady(limit time.Duration, what string, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while waiting for %s", p.Cmd.Path, what)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %v", limit, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop sends sig and waits; after grace it kills the process.
func (p *Proc) Stop(sig os.Signal, grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}
