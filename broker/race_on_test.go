//go:build race

package broker

// raceEnabled: this test binary was built with -race.
const raceEnabled = true
