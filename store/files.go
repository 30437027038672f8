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

// RowPlace is where database source stopped: the row place (wire.HeaderRow)
// it last stored, "" when none. The source keeps it in HL7_STATE after each
// row (KeepRow); a crash between storing a row and keeping its place is
// covered by the stream: when the source's last message is newer than the
// place kept (and is not a replay, which says nothing of where the source
// stopped), its place wins.
func (n *NATS) RowPlace(ctx context.Context, source string) (string, error) {
	kept := ""
	if kv, err := n.JetStream.KeyValue(ctx, wire.StateBucket); err == nil {
		if e, err := kv.Get(ctx, rowKey(source)); err == nil {
			kept = string(e.Value())
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", fmt.Errorf("source %s: where it stopped: %w", source, err)
		}
	}
	last, err := n.lastRow(ctx, source)
	if err != nil || last == "" {
		return kept, err
	}
	return last, nil
}

// KeepRow keeps where database source stopped: the place of the row it
// stored last.
func (n *NATS) KeepRow(ctx context.Context, source, place string) error {
	kv, err := n.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, rowKey(source), []byte(place))
	return err
}

func rowKey(source string) string { return "rows." + source }

// lastRow is the row place of the last message of source in HL7_IN; ""
// when there is none, or it is a replay or not from a row.
func (n *NATS) lastRow(ctx context.Context, source string) (string, error) {
	s, err := n.JetStream.Stream(ctx, wire.StreamIn)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", source, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, wire.InSubjects(source))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("source %s: where it stopped: %w", source, err)
	}
	if m.Header.Get(wire.HeaderReplayOf) != "" {
		return "", nil
	}
	return m.Header.Get(wire.HeaderRow), nil
}
