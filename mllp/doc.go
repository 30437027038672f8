// Package mllp carries frames over TCP with the Minimal Lower Layer
// Protocol: a frame reader and writer, a Server shaped like net/http's,
// and a Client that sends one frame and waits for the reply.
//
// A frame is bytes: this package knows nothing of HL7 structure, and logs
// sizes, addresses and reasons, never frame content.
package mllp
