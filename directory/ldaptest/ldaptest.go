// Package ldaptest runs a real OpenLDAP slapd on loopback for tests, with
// its own configuration and database in a temp dir and a test certificate
// for LDAPS and StartTLS.
//
// The directory holds, under ou=people,dc=example,dc=com, with passwords
// stored as salted SHA-1 ({SSHA}):
//
//   - alice, password "right", mobile "+31 6 12345678", mail alice@example.com;
//   - bob, password "bobs-pw", no mobile or mail;
//   - carol, password "carols-pw", mobile "+31 6 87654321", mail
//     carol@example.com, an entry that only svc may read (carol herself
//     may only bind);
//   - svc, password "svc-pw", a service account.
//
// and, under ou=groups,dc=example,dc=com, groups (groupOfNames) that slapd's
// memberOf overlay lists in their members' memberOf:
//
//   - cn=VPN Admins: alice;
//   - cn=Staff: bob and the group cn=VPN Admins;
//   - cn=Everyone: the group cn=Staff.
//
// So alice is in VPN Admins, and through it in Staff and Everyone; bob in
// Staff and through it in Everyone; carol in none.
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Slapd is where Start looks for OpenLDAP's server (Debian's slapd package).
const Slapd = "/usr/sbin/slapd"

// Server is an OpenLDAP slapd a test started on loopback.
type Server struct {
	// URL is its ldap:// address, which offers StartTLS.
	URL string
	// LDAPSURL is its ldaps:// address.
	LDAPSURL string
	// Roots trusts its certificate, made for 127.0.0.1.
	Roots *x509.CertPool
}

// The directory's administrator, who loads the entries.
const (
	adminDN       = "cn=admin,dc=example,dc=com"
	adminPassword = "admin-secret"
)

// Start runs slapd and loads the people in the package comment; the test's
// cleanup kills it. Without slapd installed the test is skipped, or fails
// when the environment variable CI is set.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Slapd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: apt-get install slapd ldap-utils", Slapd)
		}
		t.Skipf("%s is missing (apt-get install slapd ldap-utils)", Slapd)
	}
	dir := t.TempDir()
	roots := writeCert(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "slapd.conf"), fmt.Sprintf(slapdConf, dir, adminDN, adminPassword))

	ports := freePorts(t, 2)
	s := &Server{
		URL:      fmt.Sprintf("ldap://127.0.0.1:%d", ports[0]),
		LDAPSURL: fmt.Sprintf("ldaps://127.0.0.1:%d", ports[1]),
		Roots:    roots,
	}
	logPath := filepath.Join(dir, "slapd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// -d keeps slapd in the foreground, so that killing its process group
	// at cleanup ends it.
	cmd := exec.Command(Slapd, "-d", "0", "-f", filepath.Join(dir, "slapd.conf"), "-h", s.URL+"/ "+s.LDAPSURL+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	conn := connect(t, s.URL, exited, logPath)
	defer conn.Close()
	if err := conn.Bind(adminDN, adminPassword); err != nil {
		t.Fatalf("bind as %s: %v", adminDN, err)
	}
	load(t, conn)
	return s
}

// slapdConf is slapd's configuration: %[1]s the temp dir, %[2]s and %[3]s
// the administrator. carol's entry is hers to bind with, and only svc's to
// read.
const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCertificateFile %[1]s/cert.pem
TLSCertificateKeyFile %[1]s/key.pem

database mdb
maxsize 10485760
suffix "dc=example,dc=com"
rootdn "%[2]s"
rootpw %[3]s
directory %[1]s/db
overlay memberof

access to attrs=userPassword
	by anonymous auth
	by * none
access to dn.exact="uid=carol,ou=people,dc=example,dc=com"
	by dn.exact="uid=svc,ou=people,dc=example,dc=com" read
	by anonymous auth
	by * none
access to *
	by * read
`

// connect polls until slapd answers on url, or fails the test when slapd
// exits or the deadline passes.
func connect(t testing.TB, url string, exited <-chan error, logPath string) *ldap.Conn {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("slapd did not answer on %s: %v\n%s", url, err, log)
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("slapd exited: %v\n%s", err, log)
		case <-tick.C:
		}
	}
}

// load adds the people in the package comment.
func load(t testing.TB, conn *ldap.Conn) {
	t.Helper()
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
	person := func(uid, password, mobile, mail string) {
		attrs := map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {uid}, "sn": {uid},
			"userPassword": {ssha(t, password)},
		}
		if mobile != "" {
			attrs["mobile"] = []string{mobile}
		}
		if mail != "" {
			attrs["mail"] = []string{mail}
		}
		add("uid="+uid+",ou=people,dc=example,dc=com", attrs)
	}
	person("alice", "right", "+31 6 12345678", "alice@example.com")
	person("bob", "bobs-pw", "", "")
	person("carol", "carols-pw", "+31 6 87654321", "carol@example.com")
	person("svc", "svc-pw", "", "")
	add("ou=groups,dc=example,dc=com", map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}})
	group := func(cn string, members ...string) {
		add("cn="+cn+",ou=groups,dc=example,dc=com", map[string][]string{"objectClass": {"groupOfNames"}, "cn": {cn}, "member": members})
	}
	group("VPN Admins", "uid=alice,ou=people,dc=example,dc=com")
	group("Staff", "uid=bob,ou=people,dc=example,dc=com", "cn=VPN Admins,ou=groups,dc=example,dc=com")
	group("Everyone", "cn=Staff,ou=groups,dc=example,dc=com")
}

// ssha is password as OpenLDAP's {SSHA} scheme stores it: SHA-1 of the
// password and a salt, followed by the salt.
func ssha(t testing.TB, password string) string {
	t.Helper()
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

// writeCert writes cert.pem and key.pem into dir, a self-signed
// certificate for 127.0.0.1, and returns a pool that trusts it.
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otpgate test directory"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so none repeats
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ClosedURL is an ldap:// address on loopback where nothing listens.
func ClosedURL(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("ldap://127.0.0.1:%d", freePorts(t, 1)[0])
}
