// Command hl7broker is the HL7 v2 MLLP broker and its tools.
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/hl7broker/hl7broker/internal/logging"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// exitError carries a command's exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// Nothing here reads heap profiles, and their sampling keeps about
	// 1.5 MB of buckets for a broker's life.
	runtime.MemProfileRate = 0
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 success, 1
// a failure the command reports (a negative ACK, say), 2 a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "hl7broker:", err)
		return 2
	}
}

func newRootCmd() *cobra.Command {
	var level, format string
	root := &cobra.Command{
		Use:           "hl7broker",
		Short:         "HL7 v2 MLLP message broker",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetVersionTemplate("hl7broker {{.Version}}\n")
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&format, "log-format", "auto", "log format: console, json, or auto (json for serve, console for the tools)")
	root.AddCommand(newServeCmd(), newMirthCmd(), newSendCmd(), newImportCmd(), newListenCmd(), newCheckCmd(), newRouteCmd(), newConvertCmd(), newSchemaCmd(), newBenchCmd(), newVersionCmd(),
		newMessagesCmd(), newDLQCmd(), newDestinationsCmd(), newAuditCmd(), newStatusCmd(), newAlertsCmd())
	return root
}

// logger builds the logger the --log-* flags ask for, writing to the
// command's stderr.
func logger(cmd *cobra.Command) (zerolog.Logger, error) {
	level, _ := cmd.Flags().GetString("log-level")
	format, _ := cmd.Flags().GetString("log-format")
	return logging.New(cmd.ErrOrStderr(), level, format, cmd.Name() == "serve")
}

// helpFiles hold each command's long help, prose kept out of the code.
//
//go:embed help
var helpFiles embed.FS

// help is the long help of a command (help/NAME.txt).
func help(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("no help/" + name + ".txt") // a test runs every command's help
	}
	return strings.TrimSuffix(string(b), "\n")
}
