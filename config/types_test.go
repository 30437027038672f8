package config_test

// The destination types are registered by package delivery when it is
// imported, as in every binary; the config's tests check them too.
import _ "github.com/hl7broker/hl7broker/delivery"
