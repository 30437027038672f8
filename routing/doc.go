// Package routing owns what happens after a message is stored: routes
// that match it, the router that copies it per destination into HL7_OUT,
// delivery workers that forward it downstream with retries and order, and
// the dead-letter queue for what cannot be delivered.
package routing
