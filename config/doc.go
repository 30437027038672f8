// Package config owns the broker's configuration: its types, loading
// (one YAML file, HL7BROKER_* overrides, secret references), defaults,
// validation with every problem's key path and line, the JSON Schema, and
// the routes compiled once. It runs nothing.
package config
