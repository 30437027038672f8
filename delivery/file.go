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

// FileOptions are the keys of type file.
type FileOptions struct {
	Dir string `mapstructure:"dir"` // the folder that receives a file per message
	// FileName names each file written: {seq}, {control_id},
	// {message_id}, {received} and {ext} are replaced (see FileName).
	FileName string `mapstructure:"file_name"`
}

// type file: one file per message in a folder.
func init() {
	Register(Type[FileOptions]{
		Name: "file",
		Check: func(o *FileOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			if o.Dir == "" {
				c.Add(key+".dir", "a file destination needs a dir")
			}
			checkFileName(o.FileName, key, c)
		},
		Defaults: func(o *FileOptions, _ *config.DestinationConfig) { defaultFileName(&o.FileName) },
		New: func(o *FileOptions, d config.DestinationConfig, _ Env) (Deliverer, error) {
			removeStaleTemps(o.Dir, time.Minute)
			return &FileDeliverer{Dir: o.Dir, Ext: extFor(d), Name: o.FileName}, nil
		},
	})
}

func checkFileName(name, key string, c *config.Checker) {
	if err := CheckFileName(name); err != nil {
		c.Add(key+".file_name", "%q %s", name, err.Error())
	}
}

func defaultFileName(name *string) {
	if *name == "" {
		*name = DefaultFileName
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
// (DefaultFileName when empty; see FileName); Ext empty names the file by its content (hl7, json, xml, txt).
type FileDeliverer struct{ Dir, Ext, Name string }

// Deliver writes data.
func (d *FileDeliverer) Deliver(_ context.Context, msg Message) Result {
	data := msg.Data
	ext, pattern := d.Ext, cmp.Or(d.Name, DefaultFileName)
	name := filepath.Join(d.Dir, FileName(pattern, ext, msg))
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return Result{Outcome: Retry, Reason: err.Error()}
	}
	if err := fsutil.WriteAtomic(name, data); err != nil {
		return Result{Outcome: Retry, Reason: err.Error()}
	}
	return Result{Outcome: Delivered, SentName: name}
}

// Close does nothing.
func (d *FileDeliverer) Close() error { return nil }
