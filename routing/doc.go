// Package routing owns what happens after a message is stored and before
// it is delivered: routes that match it (Evaluate, shared with route
// test) and the router that copies it, transformed, per destination into
// HL7_OUT, in stored order, with one router active across brokers.
package routing
