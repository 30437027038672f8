package mirth

import (
	"fmt"
	"io"
	"strings"
)

// Status is how one part of a channel came over.
type Status int

const (
	// Translated: it does what it did in Mirth.
	Translated Status = iota
	// Different: translated, with a difference the note names.
	Different
	// NotTranslated: left out, or kept as a script that stops the
	// message; the note says why.
	NotTranslated
)

func (s Status) String() string {
	return [...]string{"translated", "translated with a difference", "not translated"}[s]
}

// Item is one part of a channel: a connector, a filter rule, a
// transformer step, a queue setting, a script.
type Item struct {
	Channel string // "" for the export as a whole (libraries)
	Part    string // "source (TCP Listener)", "destination To EMR: filter rule 2 (Rule Builder)"
	Status  Status
	Note    string
}

// Report is what an import did, part by part.
type Report struct {
	Items []Item
}

func (r *Report) add(channel, part string, s Status, format string, args ...any) {
	r.Items = append(r.Items, Item{Channel: channel, Part: part, Status: s, Note: fmt.Sprintf(format, args...)})
}

// Count is how many items have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, it := range r.Items {
		if it.Status == s {
			n++
		}
	}
	return n
}

// Print writes the report, channel by channel.
func (r *Report) Print(w io.Writer) {
	last := "\x00"
	for _, it := range r.Items {
		if it.Channel != last {
			if it.Channel == "" {
				fmt.Fprintln(w, "== code template libraries")
			} else {
				fmt.Fprintf(w, "== channel %s\n", it.Channel)
			}
			last = it.Channel
		}
		note := ""
		if it.Note != "" {
			note = ": " + it.Note
		}
		fmt.Fprintf(w, "  %-28s %s%s\n", "["+it.Status.String()+"]", it.Part, note)
	}
	fmt.Fprintf(w, "\n%d translated, %d translated with a difference, %d not translated\n",
		r.Count(Translated), r.Count(Different), r.Count(NotTranslated))
}

// String is the printed report.
func (r *Report) String() string {
	var b strings.Builder
	r.Print(&b)
	return b.String()
}
