package main

import (
	"crypto/tls"

	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/pflag"
)

// clientTLSFlags are the TLS flags of commands that connect.
type clientTLSFlags struct {
	enabled                   bool
	ca, cert, key, serverName string
}

func (f *clientTLSFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.enabled, "tls", false, "connect with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM file of CAs to trust (default: the system's)")
	fs.StringVar(&f.cert, "tls-cert", "", "PEM client certificate, for mutual TLS")
	fs.StringVar(&f.key, "tls-key", "", "PEM key of the client certificate")
	fs.StringVar(&f.serverName, "tls-server-name", "", "name to verify in the server's certificate (default: the host of --addr)")
}

func (f *clientTLSFlags) config() (*tls.Config, error) {
	if !f.enabled && f.ca == "" && f.cert == "" && f.key == "" && f.serverName == "" {
		return nil, nil
	}
	return mllp.ClientTLSConfig(f.ca, f.cert, f.key, f.serverName)
}

// serverTLSFlags are the TLS flags of commands that listen.
type serverTLSFlags struct{ cert, key, clientCA string }

func (f *serverTLSFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM server certificate: serve TLS")
	fs.StringVar(&f.key, "tls-key", "", "PEM key of the server certificate")
	fs.StringVar(&f.clientCA, "tls-client-ca", "", "PEM CAs a client certificate must chain to: require mutual TLS")
}

func (f *serverTLSFlags) config() (*tls.Config, error) {
	if f.cert == "" && f.key == "" && f.clientCA == "" {
		return nil, nil
	}
	return mllp.ServerTLSConfig(f.cert, f.key, f.clientCA)
}
