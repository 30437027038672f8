// Package script runs JavaScript (goja) where YAML cannot say it: a route's
// condition, a transform step, a destination's encoder. It owns the sandbox
// and its limits, the pool of runtimes, the script API and Mirth Connect
// compatibility (E4X-style access, for each loops, maps, Velocity).
package script
