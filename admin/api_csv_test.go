package admin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A value from a message that a spreadsheet would run as a formula is
// exported as text.
func TestCSVCellsAreNeverFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"mrn=445566": "mrn=445566", "O'Brien": "O'Brien", "": "",
	} {
		assert.Equal(t, want, cell(in), in)
	}
}
