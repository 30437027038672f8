// Package broker wires the parts together (store, ingest and listeners,
// router, delivery workers, admin server), supervises each long-running
// one, reloads the config while it runs, and says whether the whole is
// ready.
package broker
