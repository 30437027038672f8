package feed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hl7broker/hl7broker/fhir"
)

// Convert writes each message's FHIR R4 Bundle to w, one a line (indented
// with pretty, then not one a line), and names on errw each message that
// cannot be converted, with the reason. It returns how many could not.
func Convert(w, errw io.Writer, msgs []Message, o fhir.Options, pretty bool) (failures int) {
	out := bufio.NewWriter(w)
	defer out.Flush()
	for _, m := range msgs {
		bundle, err := fhir.ConvertBytes(m.Raw, o)
		if err != nil {
			fmt.Fprintf(errw, "%s #%d: not converted: %s\n", m.File, m.Index, OneLine(err.Error()))
			failures++
			continue
		}
		if pretty {
			var ind bytes.Buffer
			_ = json.Indent(&ind, bundle, "", "  ")
			bundle = ind.Bytes()
		}
		out.Write(bundle)
		out.WriteByte('\n')
	}
	return failures
}
