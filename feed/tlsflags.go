package feed

import (
	"crypto/tls"

	"github.com/hl7broker/hl7broker/mllp"
	"github.com/spf13/pflag"
)

// ClientTLS are the TLS flags of the commands that connect (send,
// import, bench).
type ClientTLS struct {
	enabled                   bool
	ca, cert, key, serverName string
}

// Register adds --tls, --tls-ca, --tls-cert, --tls-key and
// --tls-server-name to fs.
func (f *ClientTLS) Register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.enabled, "tls", false, "connect with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM file of CAs to trust (default: the system's)")
	fs.StringVar(&f.cert, "tls-cert", "", "PEM client certificate, for mutual TLS")
	fs.StringVar(&f.key, "tls-key", "", "PEM key of the client certificate")
	fs.StringVar(&f.serverName, "tls-server-name", "", "name to verify in the server's certificate (default: the host of --addr)")
}

// Config is the TLS the flags ask for; nil: none (plain TCP).
func (f *ClientTLS) Config() (*tls.Config, error) {
	if !f.enabled && f.ca == "" && f.cert == "" && f.key == "" && f.serverName == "" {
		return nil, nil
	}
	return mllp.ClientTLSConfig(f.ca, f.cert, f.key, f.serverName)
}

// ServerTLS are the TLS flags of the commands that listen (listen).
type ServerTLS struct{ cert, key, clientCA string }

// Register adds --tls-cert, --tls-key and --tls-client-ca to fs.
func (f *ServerTLS) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM server certificate: serve TLS")
	fs.StringVar(&f.key, "tls-key", "", "PEM key of the server certificate")
	fs.StringVar(&f.clientCA, "tls-client-ca", "", "PEM CAs a client certificate must chain to: require mutual TLS")
}

// Config is the TLS the flags ask for; nil: none (plain TCP).
func (f *ServerTLS) Config() (*tls.Config, error) {
	if f.cert == "" && f.key == "" && f.clientCA == "" {
		return nil, nil
	}
	return mllp.ServerTLSConfig(f.cert, f.key, f.clientCA)
}
