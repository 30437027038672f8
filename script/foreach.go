package script

import (
	"fmt"
	"sort"
	"strings"
)

// PositionError is a problem at a line and column of a script's text.
type PositionError struct {
	Line, Column int
	Reason       string
}

func (e *PositionError) Error() string {
	return fmt.Sprintf("line %d:%d: %s", e.Line, e.Column, e.Reason)
}

// RewriteForEach rewrites E4X's `for each (x in list)`, which iterates
// values and which goja cannot parse, into an indexed loop over
// __each(list): `for (var x, __a1 = __each(list), __i1 = 0; __i1 <
// __a1.length && ((x = __a1[__i1]) || true); __i1++)` (an indexed loop
// rather than for...of, whose iterator protocol allocates at every step).
// Every line stays where it was, so that errors point into the script as
// written. Strings, comments, template literals and regular expressions are
// left alone.
func RewriteForEach(src string) (string, error) {
	type edit struct {
		at, n int
		with  string
	}
	var edits []edit
	loops := 0
	s := scanner{src: src}
	for s.i < len(src) {
		start, word := s.nextWord()
		if word != "for" || (start > 0 && src[start-1] == '.') {
			continue
		}
		save := s.i
		s.skipSpace()
		if eachAt, w := s.i, s.peekWord(); w == "each" {
			s.i += 4
			s.skipSpace()
			if s.i >= len(src) || src[s.i] != '(' {
				return "", s.errorAt(eachAt, "for each needs ( after it")
			}
			open := s.i
			in, closeAt, err := s.forHead(open)
			if err != nil {
				return "", err
			}
			if in < 0 {
				return "", s.errorAt(open, "for each (x in list) needs in")
			}
			decl := strings.TrimSpace(src[open+1 : in])
			name := decl
			prefix := "var "
			for _, kw := range []string{"var", "let", "const"} {
				if rest, ok := strings.CutPrefix(decl, kw); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r') {
					name = strings.TrimSpace(rest)
					prefix = "var " + name + ", " // const too: the loop assigns it
				}
			}
			if !isName(name) {
				return "", s.errorAt(open+1, "for each (x in list) needs a name before in")
			}
			loops++
			a, i := fmt.Sprintf("__a%d", loops), fmt.Sprintf("__i%d", loops)
			cut := in + 2 + spaces(src[in+2:])
			edits = append(edits,
				edit{at: eachAt, n: cut - eachAt, with: "(" + prefix + a + " = __each(" + strings.Repeat("\n", strings.Count(src[eachAt:cut], "\n"))}, // lines kept
				edit{at: closeAt, n: 0, with: fmt.Sprintf("), %s = 0; %s < %s.length && ((%s = %s[%s]) || true); %s++", i, i, a, name, a, i, i)})
			s.i = open + 1 // nested loops in the head are found too
			continue
		}
		s.i = save
	}
	if len(edits) == 0 {
		return src, nil
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	var b strings.Builder
	last := 0
	for _, e := range edits {
		b.WriteString(src[last:e.at])
		b.WriteString(e.with)
		last = e.at + e.n
	}
	b.WriteString(src[last:])
	return b.String(), nil
}

// scanner walks JavaScript source, skipping strings, comments, template
// literals and regular expressions.
type scanner struct {
	src  string
	i    int
	prev byte // last significant character, to tell a regex from a division
	word string
}

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// nextWord moves past the next token, returning where it starts, the word
// if it is an identifier or keyword, and the character if it is
// punctuation (0 for anything else).
func (s *scanner) nextWord() (int, string) {
	start, word, _ := s.next()
	return start, word
}

func (s *scanner) next() (start int, word string, punct byte) {
	src := s.src
	s.skipSpace()
	start = s.i
	if s.i >= len(src) {
		return start, "", 0
	}
	c := src[s.i]
	switch {
	case isIdent(c):
		for s.i < len(src) && isIdent(src[s.i]) {
			s.i++
		}
		s.prev, s.word = 'a', src[start:s.i]
		return start, s.word, 0
	case c == '"' || c == '\'' || c == '`':
		s.skipQuoted(c)
		s.prev, s.word = 'a', ""
	case c == '/' && s.regexAllowed():
		s.skipRegex()
		s.prev, s.word = 'a', ""
	default:
		s.i++
		s.prev, s.word = c, ""
		return start, "", c
	}
	return start, "", 0
}

// regexAllowed reports whether a / here starts a regular expression.
func (s *scanner) regexAllowed() bool {
	switch s.prev {
	case 0, '(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^':
		return true
	case 'a':
		switch s.word {
		case "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else":
			return true
		}
	}
	return false
}

func (s *scanner) skipQuoted(q byte) {
	src := s.src
	for s.i++; s.i < len(src); s.i++ {
		switch src[s.i] {
		case '\\':
			s.i++
		case q:
			s.i++
			return
		case '\n':
			if q != '`' {
				return // unterminated: the compiler will say so
			}
		}
	}
}

func (s *scanner) skipRegex() {
	src := s.src
	inClass := false
	for s.i++; s.i < len(src); s.i++ {
		switch c := src[s.i]; {
		case c == '\\':
			s.i++
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '/' && !inClass:
			s.i++
			for s.i < len(src) && isIdent(src[s.i]) {
				s.i++
			}
			return
		case c == '\n':
			return
		}
	}
}

// skipSpace skips white space and comments.
func (s *scanner) skipSpace() {
	src := s.src
	for s.i < len(src) {
		switch {
		case src[s.i] == ' ' || src[s.i] == '\t' || src[s.i] == '\n' || src[s.i] == '\r':
			s.i++
		case strings.HasPrefix(src[s.i:], "//"):
			for s.i < len(src) && src[s.i] != '\n' {
				s.i++
			}
		case strings.HasPrefix(src[s.i:], "/*"):
			end := strings.Index(src[s.i+2:], "*/")
			if end < 0 {
				s.i = len(src)
				return
			}
			s.i += end + 4
		default:
			return
		}
	}
}

func (s *scanner) peekWord() string {
	j := s.i
	for j < len(s.src) && isIdent(s.src[j]) {
		j++
	}
	return s.src[s.i:j]
}

// forHead scans a for-each head from its ( at open, returning where its
// top-level `in` is (-1 if none) and where its closing ) is.
func (s *scanner) forHead(open int) (in, closeAt int, err error) {
	s.i, s.prev = open+1, '('
	depth, in := 1, -1
	for s.i < len(s.src) {
		start, word, punct := s.next()
		if word == "in" && depth == 1 && in < 0 {
			in = start
		}
		switch punct {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth--; depth == 0 {
				return in, start, nil
			}
		}
	}
	return -1, 0, s.errorAt(open, "for each ( has no matching )")
}

func (s *scanner) errorAt(at int, reason string) error {
	line := 1 + strings.Count(s.src[:at], "\n")
	col := at - strings.LastIndex(s.src[:at], "\n")
	return &PositionError{Line: line, Column: col, Reason: reason}
}

// spaces counts the spaces and tabs s starts with.
func spaces(s string) int {
	n := 0
	for n < len(s) && (s[n] == ' ' || s[n] == '\t') {
		n++
	}
	return n
}

// isName reports whether s is a plain identifier.
func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdent(s[i]) {
			return false
		}
	}
	return true
}
