// Package transforms owns the edits a route makes to a message: the steps
// admins write in YAML (set, copy, move, clear, delete, map, replace,
// remove_segments, add_segment, truncate, format_date), compiled once at
// load, applied as pure functions of a message. It knows no NATS or sockets.
package transforms
