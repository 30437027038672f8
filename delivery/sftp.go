package delivery

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/sftpconn"
)

// SFTPOptions are the keys of type sftp.
type SFTPOptions struct {
	config.SSHLogin `mapstructure:",squash"`
	Dir             string `mapstructure:"dir"`       // the folder on the server
	FileName        string `mapstructure:"file_name"` // as type file's
}

// type sftp: a file per message in a folder of an SFTP server.
func init() {
	Register(Type[SFTPOptions]{
		Name: "sftp",
		Check: func(o *SFTPOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			c.SSH(key, o.SSHLogin)
			if o.Dir == "" {
				c.Add(key+".dir", "an sftp destination needs the server's folder it writes to")
			}
			checkFileName(o.FileName, key, c)
		},
		Defaults: func(o *SFTPOptions, _ *config.DestinationConfig) { defaultFileName(&o.FileName) },
		Warnings: func(o *SFTPOptions, key string) []config.Problem { return o.SSHLogin.Warnings(key) },
		New: func(o *SFTPOptions, d config.DestinationConfig, _ Env) (Deliverer, error) {
			conn := sftpconn.Config{Addr: o.Addr, User: o.User, Password: o.Password, PrivateKeyFile: o.PrivateKeyFile,
				KnownHosts: o.KnownHosts, InsecureSkipHostKeyCheck: o.InsecureSkipHostKeyCheck, Timeout: d.Timeout}
			return &SFTPDeliverer{Conn: conn, Dir: o.Dir, Ext: extFor(d), Name: o.FileName, Timeout: d.Timeout}, nil
		},
	})
}

// SFTPDeliverer writes each message as a file in Dir on an SFTP server:
// under a temporary name (.NAME.tmp, which readers of the folder skip),
// then renamed to its name (see FileName), so a reader never sees half a
// file. Writing a file again replaces it: a retry leaves one file. Every
// failure is retried (the server down, a login refused, a folder not
// writable): none is about the message. The session is kept, and opened
// again after a failure.
type SFTPDeliverer struct {
	Conn    sftpconn.Config
	Dir     string
	Ext     string
	Name    string
	Timeout time.Duration

	mu   sync.Mutex
	conn *sftpconn.Conn
}

// Deliver writes msg's file.
func (d *SFTPDeliverer) Deliver(ctx context.Context, msg Message) Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if d.conn == nil {
		c, err := sftpconn.Dial(ctx, d.Conn)
		if err != nil {
			return Result{Outcome: Retry, Reason: "sftp: " + err.Error()}
		}
		d.conn = c
	}
	// SFTP calls take no context: a server that stops answering is cut
	// off when ctx ends, which fails the call.
	conn := d.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	name := FileName(d.Name, d.Ext, msg)
	if err := d.write(conn, name, msg.Data); err != nil {
		d.conn.Close()
		d.conn = nil
		reason := err.Error()
		if ctx.Err() != nil {
			reason = "no answer within the timeout: " + reason
		}
		return Result{Outcome: Retry, Reason: "sftp: " + reason}
	}
	return Result{Outcome: Delivered, Code: "written", SentName: name}
}

func (d *SFTPDeliverer) write(c *sftpconn.Conn, name string, data []byte) error {
	final := path.Join(d.Dir, name)
	tmp := path.Join(d.Dir, "."+name+".tmp")
	f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if os.IsNotExist(err) {
		if err := c.MkdirAll(d.Dir); err != nil {
			return fmt.Errorf("make folder %s: %w", d.Dir, err)
		}
		f, err = c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if _, ok := c.HasExtension("posix-rename@openssh.com"); ok {
		err = c.PosixRename(tmp, final)
	} else {
		// SFTP's own rename refuses to replace: a retry after a rename
		// whose answer was lost finds the file there.
		if err = c.Rename(tmp, final); err != nil {
			if _, statErr := c.Stat(final); statErr == nil {
				_ = c.Remove(final)
				err = c.Rename(tmp, final)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, strings.TrimPrefix(final, d.Dir+"/"), err)
	}
	return nil
}

// Close ends the session.
func (d *SFTPDeliverer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		err := d.conn.Close()
		d.conn = nil
		return err
	}
	return nil
}
