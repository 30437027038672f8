package config

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Warnings are what a valid config does that an admin should know is
// risky: check prints them and serve logs them at start, each with its
// key. None stops the broker.
func (c *Config) Warnings() []Problem {
	var out []Problem
	if c.Admin.Addr != "" && c.Admin.TLS.CertFile == "" && !loopbackAddr(c.Admin.Addr) {
		out = append(out, Problem{Key: "admin.addr", Message: fmt.Sprintf("%s is reachable beyond this machine without TLS: "+
			"tokens, session cookies and message content cross the network in clear; give admin.tls, or put a TLS proxy in front and bind to 127.0.0.1", c.Admin.Addr)})
	}
	if c.Scripts.Log {
		out = append(out, Problem{Key: "scripts.log", Message: "what scripts log goes to the broker's log: a script that logs a value from a message puts patient data there; keep it for testing"})
	}
	if c.Scripts.TimeLimit > 10*time.Second {
		out = append(out, Problem{Key: "scripts.time_limit", Message: fmt.Sprintf("a runaway script holds its route (and the router) for %s before it is stopped", c.Scripts.TimeLimit)})
	}
	if u, err := url.Parse(c.Admin.LDAP.URL); c.Admin.LDAP.URL != "" && err == nil && u.Scheme == "ldap" && !c.Admin.LDAP.StartTLS &&
		!loopbackAddr(net.JoinHostPort(u.Hostname(), "0")) {
		out = append(out, Problem{Key: "admin.ldap.url", Message: "people's passwords would cross the network in clear: use ldaps:// or start_tls: true"})
	}
	for i, s := range c.Sources {
		if t, ok := LookupSourceType(s.Type); ok && t.Warnings != nil {
			out = append(out, t.Warnings(s, fmt.Sprintf("sources[%d]", i))...)
		}
	}
	for i, d := range c.Destinations {
		if t, ok := LookupDestinationType(d.Type); ok && t.Warnings != nil {
			out = append(out, t.Warnings(d, fmt.Sprintf("destinations[%d]", i))...)
		}
	}
	return out
}

// Warnings are the risks of a login (at key): a host key not checked.
func (s SSHLogin) Warnings(key string) []Problem {
	if !s.InsecureSkipHostKeyCheck {
		return nil
	}
	return []Problem{{Key: key + ".insecure_skip_host_key_check", Message: "any server answering at this address is trusted; for a test server only"}}
}

// loopbackAddr says whether addr (HOST:PORT) listens on this machine
// only: a loopback IP or localhost. An empty host or 0.0.0.0 is every
// interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Summary counts what the config holds, as check prints it: "N
// listeners, [N sources, ]N routes, N destinations".
func (c *Config) Summary() string {
	sources := ""
	if len(c.Sources) > 0 {
		sources = fmt.Sprintf("%d sources, ", len(c.Sources))
	}
	return fmt.Sprintf("%d listeners, %s%d routes, %d destinations", len(c.Listeners), sources, len(c.Routes), len(c.Destinations))
}
