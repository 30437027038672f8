package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// FilePlace is a message's place in the file it was read from.
type FilePlace struct {
	File   string // base name
	Digest string // the file's SHA-256, hex
	Index  int    // from 0
}

// LastFilePlace is where a file source stopped: the place of the last
// message it stored. A source reads one file at a time, in order, so a
// file read again after a crash resumes after that message. ok is false
// when the source stored nothing (or retention removed it all).
func (n *NATS) LastFilePlace(ctx context.Context, source string) (p FilePlace, ok bool, err error) {
	s, err := n.JetStream.Stream(ctx, wire.StreamIn)
	if err != nil {
		return FilePlace{}, false, fmt.Errorf("source %s: %w", source, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, wire.InSubjects(source))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return FilePlace{}, false, nil
	} else if err != nil {
		return FilePlace{}, false, fmt.Errorf("source %s: where it stopped: %w", source, err)
	}
	p = FilePlace{File: m.Header.Get(wire.HeaderFile), Digest: m.Header.Get(wire.HeaderFileDigest)}
	if p.Index, err = strconv.Atoi(m.Header.Get(wire.HeaderFileIndex)); err != nil || p.Digest == "" {
		return FilePlace{}, false, nil // not from a file
	}
	return p, true, nil
}
