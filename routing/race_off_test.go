//go:build !race

package routing

// raceEnabled: this test binary was built with -race.
const raceEnabled = false
