// Package buildinfo says which hl7broker this is: its version and the
// commit it was built from. The CLI prints it (version, --version), the
// admin API's status carries it and the metrics export it, so an operator
// can tell which build answered. Production code shared by cmd and admin.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time for releases:
//
//	go build -ldflags "-X github.com/hl7broker/hl7broker/internal/buildinfo.Version=v1.2.3" ./cmd/hl7broker
//
// Otherwise it is the module version Go recorded, or "devel".
var Version = ""

// Info is a build's version, commit (12 hex digits, "unknown" when Go
// recorded none, as for go run), whether the checkout had changes, and
// the Go it was built with.
type Info struct {
	Version, Commit, Go string
	Modified            bool
}

// Read is this binary's Info.
func Read() Info {
	in := Info{Version: Version, Commit: "unknown", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if len(in.Commit) > 12 {
		in.Commit = in.Commit[:12]
	}
	return in
}

// String is "VERSION (commit HASH[, modified], GOVERSION)".
func (in Info) String() string {
	commit := in.Commit
	if in.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", in.Version, commit, in.Go)
}
