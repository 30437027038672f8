// Package mirth reads Mirth Connect channel exports (3.x and 4.x: a
// channel, a list of channels, a server configuration with code template
// libraries) and writes an hl7broker config, its scripts, and a report of
// what was translated, translated with a difference, or not translated.
package mirth
