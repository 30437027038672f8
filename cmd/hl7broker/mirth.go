package main

import (
	"fmt"

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
		Long:  help("mirth-import"),
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			exports := mirth.ReadFiles(w, args)
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
			res.Written(w)
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
