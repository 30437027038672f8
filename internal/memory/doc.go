// Package memory keeps the broker's memory in bounds: ApplyLimit sets the
// Go runtime's soft limit from a container's cgroup limit (unless
// GOMEMLIMIT is set), and Trimmer gives memory back to the system once the
// broker is quiet. Neither knows anything of HL7 or NATS.
package memory
