package feed

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/client"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/spf13/pflag"
)

// A migration's reconciliation: every message of its files accounted
// for against the broker's history (POST /api/v1/reconcile), found by its
// control ID and the SHA-256 of its bytes, with each destination's
// outcome and the SHA-256 of what the destination received.

// Entry is one message of the files: where it is, what identifies it,
// and what this run knows of it.
type Entry struct {
	File      string
	Position  int // 1: the file's first message
	ControlID string
	SHA256    string // of the message's bytes, as sent
	Valid     bool   // import's checks passed: it was (or would be) sent
	Problem   string // not valid: the first problem (code, place), no value
	Ack       string // the ACK code this run got; "" when it sent none
}

// entries are a file's messages as Entry values; problems are the
// survey's, to say why an invalid one was not sent.
func entries(file string, msgs [][]byte, valid []bool, problems []string) []Entry {
	out := make([]Entry, len(msgs))
	for i, raw := range msgs {
		sum := sha256.Sum256(raw)
		e := Entry{File: file, Position: i + 1, SHA256: hex.EncodeToString(sum[:]), Valid: valid[i]}
		var m hl7.Message
		if m.ParseWith(raw, hl7.Limits{MaxMessageBytes: len(raw) + 1}) == nil {
			e.ControlID = m.ControlID()
		}
		if !e.Valid && i < len(problems) {
			e.Problem = problems[i]
		}
		out[i] = e
	}
	return out
}

// Reconciler asks a broker what became of entries, waiting up to Settle
// for copies still queued or retrying (and for messages just stored to
// reach the history index).
type Reconciler struct {
	API      *client.Client
	Settle   time.Duration // how long to wait for outcomes to settle (0: ask once)
	Poll     time.Duration // how often to ask again while waiting (default 2s)
	Progress io.Writer     // a line each time it asks again (nil: none)
}

// NewReconciler asks the broker whose admin API is at server (default
// $HL7BROKER_SERVER, else client.DefaultServer) with the API token in
// tokenFile (default $HL7BROKER_TOKEN_FILE), trusting caFile if given.
func NewReconciler(server, tokenFile, caFile string, settle time.Duration, progress io.Writer) (*Reconciler, error) {
	tokenFile = cmp.Or(tokenFile, os.Getenv("HL7BROKER_TOKEN_FILE"))
	if tokenFile == "" {
		return nil, errors.New("a reconciliation asks the broker's admin API: give --api-token-file (a viewer's token) or HL7BROKER_TOKEN_FILE")
	}
	c, err := client.New(client.Options{Server: cmp.Or(server, os.Getenv("HL7BROKER_SERVER")), TokenFile: tokenFile, CAFile: caFile})
	if err != nil {
		return nil, err
	}
	return &Reconciler{API: c, Settle: settle, Progress: progress}, nil
}

// ReconcileFlags are import's reconciliation flags.
type ReconcileFlags struct {
	Only                      bool   // --reconcile: send nothing, account only
	File                      string // --reconciliation: the CSV
	server, tokenFile, caFile string
	settle                    time.Duration
}

// Register adds --reconcile, --reconciliation, --server, --api-token-file,
// --ca-file and --settle to fs.
func (f *ReconcileFlags) Register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.Only, "reconcile", false, "send nothing: account for every message of the files against the broker's history")
	fs.StringVar(&f.File, "reconciliation", "", "after sending (or with --reconcile): account for every message, a row per message and destination in FILE.csv")
	fs.StringVar(&f.server, "server", "", "for a reconciliation: the broker's admin URL (default $HL7BROKER_SERVER, else http://127.0.0.1:8080)")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "for a reconciliation: a file holding an admin API token, viewer or above (default $HL7BROKER_TOKEN_FILE)")
	fs.StringVar(&f.caFile, "ca-file", "", "for a reconciliation: a CA certificate (PEM) to trust for an https --server")
	fs.DurationVar(&f.settle, "settle", 5*time.Minute, "for a reconciliation: wait this long at most for copies queued or retrying to be delivered")
}

// Reconciler is the reconciler the flags ask for; nil when they ask for
// none.
func (f *ReconcileFlags) Reconciler(progress io.Writer) (*Reconciler, error) {
	if !f.Only && f.File == "" {
		return nil, nil
	}
	return NewReconciler(f.server, f.tokenFile, f.caFile, f.settle, progress)
}

// Account is one entry's outcome.
type Account struct {
	Entry
	Found *history.Imported // nil: not asked (not sent as invalid)
}

// Run accounts for every entry.
func (rc *Reconciler) Run(ctx context.Context, es []Entry) ([]Account, error) {
	acc := make([]Account, len(es))
	var ask []int
	for i, e := range es {
		acc[i].Entry = e
		if e.Valid {
			ask = append(ask, i)
		}
	}
	deadline := time.Now().Add(rc.Settle)
	var target map[string]uint64 // the streams' positions at the first question
	for {
		var open []int
		for start := 0; start < len(ask); start += history.MaxImported {
			batch := ask[start:min(start+history.MaxImported, len(ask))]
			req := map[string][]history.Match{"messages": make([]history.Match, len(batch))}
			for j, i := range batch {
				req["messages"][j] = history.Match{ControlID: es[i].ControlID, SHA256: es[i].SHA256}
			}
			var out struct {
				Items            []history.Imported
				Indexed, Streams map[string]uint64
			}
			if err := rc.API.Call(ctx, "POST", "/api/v1/reconcile", url.Values{}, req, &out); err != nil {
				return nil, fmt.Errorf("asking the broker (POST /api/v1/reconcile): %w", err)
			}
			if len(out.Items) != len(batch) {
				return nil, fmt.Errorf("the broker answered %d items for %d messages", len(out.Items), len(batch))
			}
			if target == nil {
				target = out.Streams
			}
			behind := false
			for name, at := range target {
				behind = behind || out.Indexed[name] < at
			}
			for j, i := range batch {
				acc[i].Found = &out.Items[j]
				if !settled(acc[i], behind) {
					open = append(open, i)
				}
			}
		}
		if len(open) == 0 || !time.Now().Before(deadline) {
			return acc, nil
		}
		if rc.Progress != nil {
			fmt.Fprintf(rc.Progress, "reconciliation: %d of %d messages not settled yet (copies queued or retrying, or not indexed yet); asking again until %s\n",
				len(open), len(ask), deadline.Format(time.TimeOnly))
		}
		select {
		case <-ctx.Done():
			return acc, ctx.Err()
		case <-time.After(cmp.Or(rc.Poll, 2*time.Second)):
		}
		ask = open
	}
}

// settled: nothing more will happen to a without someone acting: it is
// refused, or stored with every copy delivered, dead-lettered or purged.
// While the index has yet to apply what the streams held at the first
// question (behind), only a delivered copy is settled: a message not
// found may be found, a dead letter may have been replayed. A message
// this run saw acknowledged is found sooner or later.
func settled(a Account, behind bool) bool {
	f := a.Found
	if len(f.Messages) == 0 {
		return !behind && a.Ack != string(hl7.AA) && a.Ack != string(hl7.CA)
	}
	for _, d := range outcomes(f) {
		switch {
		case d.status == history.StatusQueued, d.status == history.StatusRetrying, d.status == history.StatusReceived:
			return false
		case behind && d.status != history.StatusDelivered:
			return false
		}
	}
	return true
}

// copyOutcome is what became of one destination's copy of a message: in
// the message first stored with those bytes, or else in a later one (a
// replay) that delivered it.
type copyOutcome struct {
	history.ImportedCopy
	status string // the copy's, or "unrouted", "received" (not routed yet)
	via    uint64 // a later message (a replay) that delivered it
}

func outcomes(f *history.Imported) []copyOutcome {
	if len(f.Messages) == 0 {
		return nil
	}
	first := f.Messages[0]
	var out []copyOutcome
	for _, c := range first.Copies {
		o := copyOutcome{ImportedCopy: c, status: c.Status}
		if c.Status != history.StatusDelivered {
			for _, later := range f.Messages[1:] {
				for _, lc := range later.Copies {
					if lc.Destination == c.Destination && lc.Status == history.StatusDelivered {
						o.ImportedCopy, o.status, o.via = lc, lc.Status, later.ID
					}
				}
			}
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		status := history.StatusReceived
		if first.Unrouted || first.Status == history.StatusUnrouted {
			status = history.StatusUnrouted
		} else if first.Status == history.StatusFiltered {
			status = history.StatusFiltered
		}
		out = append(out, copyOutcome{status: status})
	}
	return out
}

// Totals are a reconciliation's counts, which must add up: In = Stored +
// NotStored; each destination's Copies = Delivered + DeadLettered +
// Queued + Other.
type Totals struct {
	In, Stored, StoredTwice, Unrouted, Filtered, NotRouted int
	NotStored                                              int
	Invalid, Refused, NotFound                             int // the parts of NotStored
	Destinations                                           map[string]*DestTotals
}

// DestTotals are one destination's counts.
type DestTotals struct {
	Copies, Delivered, DeadLettered, Queued, Other int
	Changed                                        int // delivered with other bytes than the input's (a transform, an encoding)
}

// Total counts accounts.
func Total(acc []Account) Totals {
	t := Totals{In: len(acc), Destinations: map[string]*DestTotals{}}
	for _, a := range acc {
		switch {
		case !a.Valid:
			t.NotStored++
			t.Invalid++
			continue
		case len(a.Found.Messages) == 0 && a.Found.Refused != nil:
			t.NotStored++
			t.Refused++
			continue
		case len(a.Found.Messages) == 0:
			t.NotStored++
			t.NotFound++
			continue
		}
		t.Stored++
		originals := 0
		for _, m := range a.Found.Messages {
			if m.ReplayOf == "" {
				originals++
			}
		}
		if originals > 1 {
			t.StoredTwice++
		}
		for _, o := range outcomes(a.Found) {
			switch o.status {
			case history.StatusUnrouted:
				t.Unrouted++
				continue
			case history.StatusFiltered:
				t.Filtered++
				continue
			case history.StatusReceived:
				t.NotRouted++
				continue
			}
			d := t.Destinations[o.Destination]
			if d == nil {
				d = &DestTotals{}
				t.Destinations[o.Destination] = d
			}
			d.Copies++
			switch o.status {
			case history.StatusDelivered:
				d.Delivered++
				if o.SHA256 != a.SHA256 {
					d.Changed++
				}
			case history.StatusDeadLettered:
				d.DeadLettered++
			case history.StatusQueued, history.StatusRetrying:
				d.Queued++
			default:
				d.Other++
			}
		}
	}
	return t
}

// OK: every message stored once and every copy delivered.
func (t Totals) OK() bool {
	if t.NotStored > 0 || t.StoredTwice > 0 || t.NotRouted > 0 {
		return false
	}
	for _, d := range t.Destinations {
		if d.Delivered != d.Copies {
			return false
		}
	}
	return true
}

// Print writes the totals and whether they add up: counts and names,
// no value of any message.
func (t Totals) Print(w io.Writer) {
	fmt.Fprintf(w, "reconciliation: in %d = stored %d + not stored %d (invalid, not sent %d; refused by the broker %d; not found %d)\n",
		t.In, t.Stored, t.NotStored, t.Invalid, t.Refused, t.NotFound)
	if t.StoredTwice > 0 {
		fmt.Fprintf(w, "stored more than once (resent after the duplicate window): %d\n", t.StoredTwice)
	}
	fmt.Fprintf(w, "stored %d: no route matched %d, filtered %d, not routed yet %d\n", t.Stored, t.Unrouted, t.Filtered, t.NotRouted)
	for _, name := range slices.Sorted(maps.Keys(t.Destinations)) {
		d := t.Destinations[name]
		fmt.Fprintf(w, "destination %s: copies %d = delivered %d + dead-lettered %d + queued or retrying %d + purged or other %d",
			name, d.Copies, d.Delivered, d.DeadLettered, d.Queued, d.Other)
		if d.Changed > 0 {
			fmt.Fprintf(w, " (delivered as other bytes than the input's: %d, by a transform or an encoding)", d.Changed)
		}
		fmt.Fprintln(w)
	}
	sum := t.Stored + t.NotStored
	verdict := "the totals add up"
	if sum != t.In {
		verdict = fmt.Sprintf("THE TOTALS DO NOT ADD UP: stored + not stored = %d, in = %d", sum, t.In)
	}
	for _, name := range slices.Sorted(maps.Keys(t.Destinations)) {
		d := t.Destinations[name]
		if d.Delivered+d.DeadLettered+d.Queued+d.Other != d.Copies {
			verdict = "THE TOTALS DO NOT ADD UP for destination " + name
		}
	}
	if t.OK() {
		verdict += "; every message stored once and every copy delivered"
	}
	fmt.Fprintln(w, verdict)
}

// reconciliationHeader is the report's columns.
var reconciliationHeader = []string{"file", "position", "control_id", "sha256", "outcome", "detail", "message_id", "later_messages",
	"destination", "status", "via_message", "code", "attempts", "reason", "received_sha256", "received_as_sent"}

// WriteReconciliation writes one row per message and destination (one
// row for a message with no copy): CSV for an auditor. It holds control
// IDs, ids, codes, reasons (no field values) and digests.
func WriteReconciliation(name string, acc []Account) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	cw := csv.NewWriter(f)
	_ = cw.Write(reconciliationHeader)
	for _, a := range acc {
		base := []string{a.File, strconv.Itoa(a.Position), a.ControlID, a.SHA256}
		switch {
		case !a.Valid:
			_ = cw.Write(pad(append(base, "invalid", "not sent: "+a.Problem)))
			continue
		case len(a.Found.Messages) == 0 && a.Found.Refused != nil:
			r := a.Found.Refused
			_ = cw.Write(pad(append(base, "refused", fmt.Sprintf("%s %s: %s (listener %s, %s)", r.Ack, r.Code, r.Reason, r.Listener, r.At.Format(time.RFC3339)))))
			continue
		case len(a.Found.Messages) == 0:
			detail := "no message stored with these bytes"
			if a.Ack != "" {
				detail += "; the ACK was " + a.Ack
			}
			_ = cw.Write(pad(append(base, "not_found", detail)))
			continue
		}
		var later []string
		for _, m := range a.Found.Messages[1:] {
			later = append(later, strconv.FormatUint(m.ID, 10))
		}
		base = append(base, "stored", "", strconv.FormatUint(a.Found.Messages[0].ID, 10), strings.Join(later, ";"))
		for _, o := range outcomes(a.Found) {
			via, same := "", ""
			if o.via != 0 {
				via = strconv.FormatUint(o.via, 10)
			}
			if o.SHA256 != "" {
				same = strconv.FormatBool(o.SHA256 == a.SHA256)
			}
			attempts := ""
			if o.Destination != "" {
				attempts = strconv.Itoa(o.Attempts)
			}
			_ = cw.Write(append(slices.Clone(base), o.Destination, o.status, via, o.Code, attempts, o.Reason, o.SHA256, same))
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return f.Close()
}

// pad fills a row out to the report's columns.
func pad(row []string) []string {
	for len(row) < len(reconciliationHeader) {
		row = append(row, "")
	}
	return row
}
