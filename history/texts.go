package history

// Content search: with history.content_search, every message's text is
// in an SQLite FTS5 table, "texts" (contentless: it holds the words'
// index, not the text; the rowid is the message's id), fed by the
// Indexer from HL7_IN. It is a PHI index: the words of every message.

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// StreamTexts names, in the index's positions, how far the Indexer has
// read HL7_IN for content (apart from the records it reads to learn
// messages, which stop once their events tell it).
const StreamTexts = "HL7_IN:texts"

// textsSchema makes the table of words: accents and case ignored,
// tokens split at anything that is not a letter or digit (so HL7's
// separators too); contentless_delete lets pruning delete rows.
const textsSchema = `CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5(body, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 2')`

// textOf is what the index takes of a message's bytes: valid UTF-8 (a
// message in another charset loses only its odd bytes).
func textOf(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	return string(bytes.ToValidUTF8(data, []byte(" ")))
}

// ErrNoContentSearch: a search by text while history.content_search is
// off.
var ErrNoContentSearch = &QueryError{"content search is off (history.content_search: true turns it on)"}

// ftsQuery turns what a person typed into an FTS5 query: every word must
// be in the message (in any field); a word ending in * is a prefix; words
// in double quotes are a phrase. Nothing typed is taken as FTS5 syntax
// (no OR, NEAR, column filters or bare operators).
func ftsQuery(text string) (string, error) {
	var terms []string
	rest := strings.TrimSpace(text)
	for rest != "" {
		var term string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return "", bad("text: a phrase opened with \" is not closed")
			}
			term, rest = rest[1:1+end], rest[2+end:]
			if words := strings.Fields(clean(term)); len(words) > 0 {
				terms = append(terms, `"`+strings.Join(words, " ")+`"`)
			}
		} else {
			term, rest, _ = strings.Cut(rest, " ")
			prefix := strings.HasSuffix(term, "*")
			if words := strings.Fields(clean(strings.TrimSuffix(term, "*"))); len(words) > 0 {
				q := `"` + strings.Join(words, " ") + `"`
				if prefix {
					q += "*"
				}
				terms = append(terms, q)
			}
		}
		rest = strings.TrimSpace(rest)
	}
	if len(terms) == 0 {
		return "", bad("text: give at least one word (letters or digits)")
	}
	if len(terms) > 16 {
		return "", bad("text: at most 16 words")
	}
	return strings.Join(terms, " "), nil
}

// clean keeps letters and digits; anything else separates words (as the
// tokenizer does), and no quote reaches FTS5.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return ' '
	}, s)
}

// QueryError is a search the index cannot make as asked (what was
// asked is wrong, not the index).
type QueryError struct{ Why string }

func (e *QueryError) Error() string { return e.Why }

func bad(format string, args ...any) error { return &QueryError{fmt.Sprintf(format, args...)} }
