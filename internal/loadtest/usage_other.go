//go:build !unix

package loadtest

import "os"

// peakRSSBytes is not reported here.
func peakRSSBytes(*os.ProcessState) int64 { return 0 }
