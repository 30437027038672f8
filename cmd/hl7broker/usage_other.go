//go:build !unix

package main

import "os"

// peakRSSBytes is not reported here.
func peakRSSBytes(*os.ProcessState) int64 { return 0 }
