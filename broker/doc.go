// Package broker runs the broker as a host of parts (host.go): every
// listener, source, destination worker, the router, the janitor and the
// rest is a part with a name and the config it runs with, started in
// order by Start, kept under the supervisor, changed by Reload (a part
// whose config changed is restarted, a new one started, one gone
// stopped) and stopped by Shutdown, all by one loop. It also wires the
// store, history and the admin server together, and says whether the
// whole is ready.
package broker
