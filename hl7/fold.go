package hl7

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// unaccent takes accents off letters that Unicode composes from a letter
// and marks (é, ñ, ễ), then composes what is left again.
var unaccent = transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)

// plainLetters are letters no decomposition takes to a plain one.
var plainLetters = strings.NewReplacer("đ", "d", "ø", "o", "ł", "l", "ß", "ss", "æ", "ae", "œ", "oe", "ı", "i", "þ", "th", "ð", "d")

// FoldKey is a search key's value as a folding key matches it: lower
// case, without accents, spaces trimmed, so that Nguyễn, NGUYEN and
// nguyen are one, and Müller is muller.
func FoldKey(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if out, _, err := transform.String(unaccent, s); err == nil {
		s = out
	}
	return plainLetters.Replace(s)
}
