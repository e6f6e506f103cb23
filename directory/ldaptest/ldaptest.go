// Package ldaptest runs a real OpenLDAP slapd on loopback for tests, with
// its own configuration, a test certificate for LDAPS and StartTLS, and
// three people under ou=people,dc=example,dc=com: alice (password "right",
// mobile "+31 6 12345678", mail alice@example.com), bob ("bobs-pw", no
// mobile or mail) and svc ("svc-pw", a service account).
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Server is an OpenLDAP slapd a test started on loopback.
type Server struct {
	// URL is its ldap:// address, LDAPSURL its ldaps:// one.
	URL, LDAPSURL string
	// Roots trusts its certificate.
	Roots *x509.CertPool
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs slapd with its own configuration and database in a temp
// dir, with a test certificate for LDAPS and StartTLS, and loads alice
// (with mobile and mail), bob (without) and a service account.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("slapd is not installed; .ci/run installs it")
		}
		t.Skip("slapd not installed (apt-get install slapd)")
	}
	dir := t.TempDir()
	roots := writeCert(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile %[1]s/cert.pem
TLSCertificateKeyFile %[1]s/key.pem
database mdb
maxsize 10485760
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-secret
directory %[1]s/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p1, p2 := freePort(t), freePort(t)
	s := &Server{URL: fmt.Sprintf("ldap://127.0.0.1:%d", p1), LDAPSURL: fmt.Sprintf("ldaps://127.0.0.1:%d", p2), Roots: roots}
	cmd := exec.Command("/usr/sbin/slapd", "-d", "0", "-f", filepath.Join(dir, "slapd.conf"), "-h", s.URL+"/ "+s.LDAPSURL+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	var conn *ldap.Conn
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL)
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not start: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polls for the server process, not for time
	}
	defer conn.Close()
	if err := conn.Bind("cn=admin,dc=example,dc=com", "admin-secret"); err != nil {
		t.Fatal(err)
	}
	add := func(dn string, attrs map[string][]string) {
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			r.Attribute(k, v)
		}
		if err := conn.Add(r); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	add("dc=example,dc=com", map[string][]string{"objectClass": {"dcObject", "organization"}, "o": {"Example"}, "dc": {"example"}})
	add("ou=people,dc=example,dc=com", map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}})
	person := func(uid, pw string, extra map[string][]string) {
		attrs := map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {uid}, "sn": {uid}, "userPassword": {pw}}
		for k, v := range extra {
			attrs[k] = v
		}
		add("uid="+uid+",ou=people,dc=example,dc=com", attrs)
	}
	person("alice", "right", map[string][]string{"mobile": {"+31 6 12345678"}, "mail": {"alice@example.com"}})
	person("bob", "bobs-pw", nil)
	person("svc", "svc-pw", nil)
	return s
}

// writeCert makes a CA-signed-by-itself certificate for 127.0.0.1.
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// ClosedURL is an ldap:// address on loopback where nothing listens.
func ClosedURL(t testing.TB) string { return fmt.Sprintf("ldap://127.0.0.1:%d", freePort(t)) }
