package delivery

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/fsutil"
)

// DefaultFileName is how a file or sftp destination names a message's
// file when file_name is not set: 0000000041-CTRL9.hl7.
const DefaultFileName = "{seq}-{control_id}.{ext}"

var fileNameField = regexp.MustCompile(`\{[^{}]*\}`)

// fileNameFields are what a file_name may hold, and what each becomes.
var fileNameFields = map[string]func(Message, string) string{
	"{seq}":        func(m Message, _ string) string { return fmt.Sprintf("%010d", m.InSeq) },
	"{control_id}": func(m Message, _ string) string { return m.ControlID },
	"{message_id}": func(m Message, _ string) string { return MessageID(m) },
	"{received}": func(m Message, _ string) string {
		if m.ReceivedAt.IsZero() {
			return "unknown"
		}
		return m.ReceivedAt.UTC().Format("20060102T150405.000Z")
	},
	"{ext}": func(m Message, ext string) string {
		if ext == "" { // an encoder's payload: named by what it is
			return sniffExt(m.Data)
		}
		return ext
	},
}

// CheckFileName says what is wrong with a file_name pattern: a field it
// does not know, a folder in it, or nothing unique (two messages would
// write the same file, and the second would replace the first).
func CheckFileName(pattern string) error {
	if strings.ContainsAny(pattern, `/\`) {
		return errors.New("must be a name, without folders")
	}
	for _, f := range fileNameField.FindAllString(pattern, -1) {
		if fileNameFields[f] == nil {
			return fmt.Errorf("%s is not one of {seq}, {control_id}, {message_id}, {received}, {ext}", f)
		}
	}
	if !strings.Contains(pattern, "{seq}") && !strings.Contains(pattern, "{message_id}") {
		return errors.New("must hold {seq} or {message_id}: without one, two messages could get the same name and one would replace the other")
	}
	return nil
}

// FileName is msg's file name by pattern (already checked); each field's
// value is made safe for a file name.
func FileName(pattern, ext string, msg Message) string {
	return fileNameField.ReplaceAllStringFunc(pattern, func(f string) string {
		if fn := fileNameFields[f]; fn != nil {
			return fsutil.SafeName(fn(msg, ext))
		}
		return f
	})
}

// extFor is a file's extension by destination d's encoding; "" for an
// encoder's payload, named by its first character (json, xml, hl7, txt).
func extFor(d config.DestinationConfig) string {
	if d.Encoder != nil {
		return ""
	}
	if d.Encoding == "json" || d.Encoding == "fhir" {
		return "json"
	}
	return "hl7"
}
