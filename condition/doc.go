// Package condition owns the condition language of routes (when) and of
// transform steps (where): header keys, field tests, all/any/not; compiled
// once, evaluated on a parsed message. It knows only package hl7.
package condition
