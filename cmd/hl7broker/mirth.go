package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/mirth"
)

func newMirthCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mirth", Short: "Move channels over from Mirth Connect"}
	var out string
	imp := &cobra.Command{
		Use:   "import FILE.xml... --out DIR",
		Short: "Translate Mirth Connect channel exports into an hl7broker config",
		Long: `Import reads Mirth Connect 3.x and 4.x exports (a channel, several channels,
or a server configuration with code template libraries) and writes
DIR/hl7broker.yaml, its scripts under DIR/scripts, secrets taken from the
export under DIR/secrets, and DIR/report.txt: for each channel, connector,
filter rule and transformer step, whether it was translated, translated
with a difference (which), or not translated (why).

Exit status: 0 when everything was translated, 3 when a config was written
but parts were not translated, 2 when nothing could be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			var exports []*mirth.Export
			for _, f := range args {
				data, err := os.ReadFile(f)
				if err == nil {
					var ex *mirth.Export
					if ex, err = mirth.Read(data); err == nil {
						exports = append(exports, ex)
						continue
					}
				}
				fmt.Fprintf(w, "%s: %v\n", f, err)
			}
			if len(exports) == 0 {
				return exitError{2}
			}
			res, err := mirth.Import(exports, out)
			if res != nil && res.Report != nil {
				res.Report.Print(w)
			}
			if err != nil {
				fmt.Fprintln(w, err)
				return exitError{2}
			}
			fmt.Fprintf(w, "\nwrote %s, %d script file(s) and report.txt", res.Config, len(res.Files))
			if len(res.Secrets) > 0 {
				fmt.Fprintf(w, "; secrets (mode 0600, keep them out of git) in %d file(s) under secrets/", len(res.Secrets))
			}
			fmt.Fprintln(w)
			if _, err := config.Load(res.Config); err != nil {
				fmt.Fprintln(w, "the written config does not pass check (please report this):")
				printConfigError(w, res.Config, err)
				return exitError{3}
			}
			if res.Report.Count(mirth.NotTranslated) > 0 {
				return exitError{3}
			}
			return nil
		},
	}
	imp.Flags().StringVar(&out, "out", "", "the folder to write the config, scripts and report into (required)")
	_ = imp.MarkFlagRequired("out")
	cmd.AddCommand(imp)
	return cmd
}
