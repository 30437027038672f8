package main

import (
	"fmt"

	"github.com/hl7broker/hl7broker/internal/buildinfo"
	"github.com/spf13/cobra"
)

// version is set at build time for releases:
// go build -ldflags "-X main.version=v1.2.3" ./cmd/hl7broker
// Otherwise it is the module version Go recorded, or "devel".
var version = ""

// versionString is "VERSION (commit HASH[, modified], GOVERSION)".
func versionString() string {
	if version != "" {
		buildinfo.Version = version // what status and the metrics say too
	}
	return buildinfo.Read().String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the version and the commit it was built from", Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "hl7broker", versionString()) }}
}
