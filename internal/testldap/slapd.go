// Package testldap runs a real OpenLDAP server (Debian's slapd) for
// tests: a directory under dc=example,dc=org with people, groups and the
// memberOf overlay, on 127.0.0.1. Test helper only; a test skips when
// slapd is not installed (.ci/run installs it).
package testldap

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Base, AdminDN and AdminPassword are the directory's suffix and its
// root account.
const (
	Base          = "dc=example,dc=org"
	AdminDN       = "cn=admin,dc=example,dc=org"
	AdminPassword = "admin-secret-for-tests"
	People        = "ou=people," + Base
	Groups        = "ou=groups," + Base
)

// Directory is a running slapd.
type Directory struct {
	URL string // ldap://127.0.0.1:PORT
	t   testing.TB
}

// slapdPath finds slapd, or skips the test.
func slapdPath(t testing.TB) string {
	for _, p := range []string{"/usr/sbin/slapd", "/usr/local/sbin/slapd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	t.Skip("slapd is not installed (Debian: apt-get install slapd; .ci/run installs it)")
	return ""
}

// Start runs slapd in a temporary folder until the test ends, with the
// base, people and groups entries made.
func Start(t testing.TB) *Directory {
	t.Helper()
	bin := slapdPath(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile %[1]s/slapd.pid
database mdb
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
overlay memberof
`, dir, Base, AdminDN, AdminPassword)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := &Directory{URL: "ldap://" + addr, t: t}
	cmd := exec.Command(bin, "-f", filepath.Join(dir, "slapd.conf"), "-h", d.URL+"/", "-d", "0")
	logFile, _ := os.Create(filepath.Join(dir, "slapd.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("slapd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logFile.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := ldap.DialURL(d.URL)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd did not answer at %s within 15 s: %v; its log: %s", d.URL, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.add(Base, map[string][]string{"objectClass": {"top", "dcObject", "organization"}, "o": {"Example Hospital"}, "dc": {"example"}})
	d.add(People, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}})
	d.add(Groups, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}})
	return d
}

func (d *Directory) admin() *ldap.Conn {
	d.t.Helper()
	c, err := ldap.DialURL(d.URL)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		d.t.Fatal(err)
	}
	return c
}

func (d *Directory) add(dn string, attrs map[string][]string) {
	d.t.Helper()
	c := d.admin()
	defer c.Close()
	req := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := c.Add(req); err != nil {
		d.t.Fatalf("add %s: %v", dn, err)
	}
}

// AddUser adds a person uid=name under People with password.
func (d *Directory) AddUser(name, password string) string {
	dn := "uid=" + ldap.EscapeDN(name) + "," + People
	d.add(dn, map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {name}, "cn": {name}, "sn": {name}, "userPassword": {password}})
	return dn
}

// AddGroup adds a group cn=name under Groups with members (DNs); the
// memberOf overlay lists it in each member's memberOf.
func (d *Directory) AddGroup(name string, members ...string) string {
	dn := "cn=" + ldap.EscapeDN(name) + "," + Groups
	d.add(dn, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {name}, "member": members})
	return dn
}
