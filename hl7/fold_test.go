package hl7

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFoldKeyIgnoresCaseAndAccents(t *testing.T) {
	for in, want := range map[string]string{
		"Nguyễn": "nguyen", "NGUYEN": "nguyen", " nguyen ": "nguyen", "Müller": "muller", "MÜLLER": "muller",
		"García": "garcia", "Đặng": "dang", "Søren": "soren", "Łukasz": "lukasz", "Straße": "strasse",
		"Yılmaz": "yilmaz", "O'Brien": "o'brien", "": "",
	} {
		assert.Equal(t, want, FoldKey(in), in)
	}
}
