package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/hl7broker/hl7broker/history"
	"github.com/spf13/pflag"
)

// Exit codes of a command that talks to a running broker: the CLI's, and
// a script's that wraps this client and wants the same.
const (
	ExitFailed       = 1 // the server answered an error, or some items of a bulk operation failed
	ExitUsage        = 2
	ExitUnauthorized = 3 // 401 or 403: no valid token, or a role that may not
	ExitNotFound     = 4
	ExitUnreachable  = 5 // no answer from the server
)

// Failure is an error with the exit code a command gives for it.
type Failure struct {
	Code int
	Msg  string
}

func (f *Failure) Error() string { return f.Msg }

// Usage is a Failure of the command line (exit code 2).
func Usage(msg string) error { return &Failure{ExitUsage, msg} }

// Exit is the exit code and the message a command prints for err: a
// Failure's own; an answer of the server's by its status.
func Exit(err error) (code int, msg string) {
	var f *Failure
	var ce *Error
	switch {
	case errors.As(err, &f):
		return f.Code, f.Msg
	case errors.Is(err, ErrUsage):
		return ExitUsage, strings.TrimPrefix(err.Error(), "usage: ")
	case !errors.As(err, &ce):
		return ExitFailed, err.Error()
	case ce.Status == 0:
		return ExitUnreachable, ce.Message
	case ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden:
		return ExitUnauthorized, ce.Error()
	case ce.Status == http.StatusNotFound:
		return ExitNotFound, ce.Error()
	case ce.Status == http.StatusBadRequest:
		return ExitUsage, ce.Error()
	}
	return ExitFailed, ce.Error()
}

// Session is one command's use of a client: where it writes, and whether
// it writes the server's JSON as it came (for scripts) instead of text.
type Session struct {
	*Client
	JSON bool
	Out  io.Writer
}

// fetch gets path; printed says the JSON was written as it came.
func (s *Session) fetch(ctx context.Context, method, path string, q url.Values, body any) (raw json.RawMessage, printed bool, err error) {
	if err := s.Call(ctx, method, path, q, body, &raw); err != nil {
		return nil, false, err
	}
	if s.JSON {
		PrintJSON(s.Out, raw)
	}
	return raw, s.JSON, nil
}

// Show gets path and writes the answer as text with write (as JSON with
// Session.JSON).
func Show[T any](ctx context.Context, s *Session, path string, q url.Values, write func(io.Writer, T)) error {
	raw, printed, err := s.fetch(ctx, "GET", path, q, nil)
	if err != nil || printed {
		return err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	write(s.Out, v)
	return nil
}

// Raw gets path and writes the answer as it came (a CSV, say).
func (s *Session) Raw(ctx context.Context, path string, q url.Values) error {
	var raw json.RawMessage
	if err := s.Call(ctx, "GET", path, q, nil, &raw); err != nil {
		return err
	}
	_, err := s.Out.Write(raw)
	return err
}

// Do sends body and writes done (the answer, with Session.JSON).
func (s *Session) Do(ctx context.Context, method, path string, body any, done string) error {
	if _, printed, err := s.fetch(ctx, method, path, nil, body); err != nil || printed {
		return err
	}
	_, err := fmt.Fprintln(s.Out, done)
	return err
}

// Bulk posts a bulk operation, writes its outcome, and fails (exit 1)
// when some items failed.
func (s *Session) Bulk(ctx context.Context, path string, body any, verb string) error {
	raw, printed, err := s.fetch(ctx, "POST", path, nil, body)
	if err != nil {
		return err
	}
	var out history.Outcome
	_ = json.Unmarshal(raw, &out)
	if !printed {
		WriteOutcome(s.Out, out, verb)
	}
	if out.Failed > 0 {
		return &Failure{ExitFailed, fmt.Sprintf("%d of %d failed", out.Failed, out.Failed+out.Done)}
	}
	return nil
}

// Query is the parameters given (the empty ones left out) and a limit.
func Query(params map[string]string, limit int) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Keys adds NAME=VALUE search keys to q as key.NAME parameters.
func Keys(q url.Values, keys []string) error {
	for _, kv := range keys {
		name, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Usage("--key takes NAME=VALUE")
		}
		q.Set("key."+name, v)
	}
	return nil
}

// IDs checks that each arg is a message or dead-letter id.
func IDs(args []string) error {
	for _, a := range args {
		if n, err := strconv.ParseUint(a, 10, 64); err != nil || n == 0 {
			return Usage(fmt.Sprintf("%q is not an id", a))
		}
	}
	return nil
}

// IDsOr is a bulk operation's body: the ids given, or what a flag selects
// (from all), not both; hint says what to give when neither is.
func IDsOr(args []string, flag, hint string, selected bool, all func() (map[string]any, error)) (map[string]any, error) {
	switch {
	case len(args) > 0 && selected:
		return nil, Usage("give ids or --" + flag + ", not both")
	case len(args) > 0:
		return map[string]any{"ids": args}, IDs(args)
	case selected:
		return all()
	}
	return nil, Usage(hint)
}

// Flags registers the flags a command that talks to a broker takes:
// --server, --token-file, --ca-file and --json.
func Flags(f *pflag.FlagSet) {
	f.String("server", "", "the broker's admin URL (default $HL7BROKER_SERVER, else http://127.0.0.1:8080)")
	f.String("token-file", "", "file holding the API token (default $HL7BROKER_TOKEN_FILE)")
	f.String("ca-file", "", "CA certificate (PEM) to trust for an https --server")
	f.Bool("json", false, "print JSON (for scripts) instead of tables")
}

// FromFlags is the session Flags' values ask for (with $HL7BROKER_SERVER
// and $HL7BROKER_TOKEN_FILE when a flag is not given), writing to out.
func FromFlags(f *pflag.FlagSet, out io.Writer) (*Session, error) {
	server, _ := f.GetString("server")
	tokenFile, _ := f.GetString("token-file")
	caFile, _ := f.GetString("ca-file")
	asJSON, _ := f.GetBool("json")
	tokenFile = cmp.Or(tokenFile, os.Getenv("HL7BROKER_TOKEN_FILE"))
	if tokenFile == "" {
		return nil, Usage("give the API token's file: --token-file FILE or HL7BROKER_TOKEN_FILE")
	}
	c, err := New(Options{Server: cmp.Or(server, os.Getenv("HL7BROKER_SERVER")), TokenFile: tokenFile, CAFile: caFile})
	if err != nil {
		return nil, Usage(strings.TrimPrefix(strings.Replace(err.Error(), "CA file", "--ca-file", 1), "usage: "))
	}
	return &Session{Client: c, JSON: asJSON, Out: out}, nil
}
