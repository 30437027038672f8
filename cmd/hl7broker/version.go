package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time for releases:
// go build -ldflags "-X main.version=v1.2.3" ./cmd/hl7broker
// Otherwise it is the module version Go recorded, or "devel".
var version = ""

// versionString is "VERSION (commit HASH[, modified], GOVERSION)": the
// commit comes from the VCS stamp Go puts in binaries built from a
// checkout ("unknown" elsewhere, such as go run).
func versionString() string {
	v, commit, modified := version, "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", v, commit, runtime.Version())
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit it was built from",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "hl7broker", versionString())
		},
	}
}
