package delivery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/fsutil"
)

// fileType: one file per message in a folder.
var fileType = Type{
	DestinationType: config.DestinationType{
		Name: "file",
		Keys: []string{"dir"},
		Check: func(d config.DestinationConfig, key string, c *config.Checker) {
			if d.Dir == "" {
				c.Add(key+".dir", "a file destination needs a dir")
			}
		},
	},
	New: func(d config.DestinationConfig, _ Env) (Deliverer, error) {
		return &FileDeliverer{Dir: d.Dir, Ext: map[string]string{"json": "json"}[d.Encoding]}, nil
	},
}

// FileDeliverer writes each message to its own file in Dir, atomically
// (a temporary file, then a rename): NNNNNNNNNN-<control ID>.<Ext> by
// HL7_IN sequence; Ext is hl7 when empty.
type FileDeliverer struct{ Dir, Ext string }

// Deliver writes data.
func (d *FileDeliverer) Deliver(_ context.Context, msg Message) Result {
	data, seq := msg.Data, msg.InSeq
	ext := d.Ext
	if ext == "" {
		ext = "hl7"
	}
	name := filepath.Join(d.Dir, fmt.Sprintf("%010d-%s.%s", seq, fsutil.SafeName(msg.ControlID), ext))
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return Result{Outcome: Retry, Reason: err.Error()}
	}
	if err := fsutil.WriteAtomic(name, data); err != nil {
		return Result{Outcome: Retry, Reason: err.Error()}
	}
	return Result{Outcome: Delivered, Reason: ""}
}

// Close does nothing.
func (d *FileDeliverer) Close() error { return nil }
