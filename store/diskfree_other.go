//go:build !unix

package store

import "math"

// freeBytes is not known here: assume enough.
func freeBytes(string) (uint64, error) { return math.MaxUint64, nil }

// diskSpace is not known here: assume enough.
func diskSpace(string) (free, size uint64, err error) { return math.MaxUint64, math.MaxUint64, nil }
