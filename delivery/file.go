package delivery

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/fsutil"
)

// fileType: one file per message in a folder.
var fileType = Type{
	DestinationType: config.DestinationType{
		Name: "file",
		Keys: []string{"dir", "file_name", "fhir_bundle", "time_zone", "charset"},
		Check: func(d config.DestinationConfig, key string, c *config.Checker) {
			if d.Dir == "" {
				c.Add(key+".dir", "a file destination needs a dir")
			}
			checkFileName(d, key, c)
			checkFHIREncoding(d, key, c)
		},
		Defaults: defaultFileName,
	},
	New: func(d config.DestinationConfig, _ Env) (Deliverer, error) {
		removeStaleTemps(d.Dir, time.Minute)
		return &FileDeliverer{Dir: d.Dir, Ext: extFor(d.Encoding), Name: d.FileName}, nil
	},
}

func checkFileName(d config.DestinationConfig, key string, c *config.Checker) {
	if err := CheckFileName(d.FileName); err != nil {
		c.Add(key+".file_name", "%q %s", d.FileName, err.Error())
	}
}

func defaultFileName(d *config.DestinationConfig) {
	if d.FileName == "" {
		d.FileName = DefaultFileName
	}
}

// removeStaleTemps removes the temporary files (fsutil.WriteAtomic's
// .tmp-*) a crash left in dir, older than age: a write in progress (of
// another slot) is younger.
func removeStaleTemps(dir string, age time.Duration) {
	stale, _ := filepath.Glob(filepath.Join(dir, fsutil.TempPattern))
	for _, p := range stale {
		if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() && time.Since(info.ModTime()) > age {
			_ = os.Remove(p)
		}
	}
}

// FileDeliverer writes each message to its own file in Dir, atomically
// (a temporary file, then a rename), named by the pattern Name
// (DefaultFileName when empty; see FileName); Ext is hl7 when empty.
type FileDeliverer struct{ Dir, Ext, Name string }

// Deliver writes data.
func (d *FileDeliverer) Deliver(_ context.Context, msg Message) Result {
	data := msg.Data
	ext, pattern := cmp.Or(d.Ext, "hl7"), cmp.Or(d.Name, DefaultFileName)
	name := filepath.Join(d.Dir, FileName(pattern, ext, msg))
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
