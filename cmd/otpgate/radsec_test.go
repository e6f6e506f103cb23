package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// testCA issues certificates written as PEM files into a temp dir.
type testCA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate's PEM file
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), key: key}
	ca.cert, _ = x509.ParseCertificate(der)
	ca.file = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a certificate for cn with DNS names dns (and 127.0.0.1),
// good for a TLS server and client, and returns its and its key's files.
func (ca *testCA) issue(t *testing.T, cn string, dns ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, cn+".pem"), filepath.Join(ca.dir, cn+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

// startRadSec runs otpgate with RadSec for gateways from address, and
// returns it and the CA that signs the gateways' certificates.
func startRadSec(t *testing.T, address string) (*server, *testCA) {
	t.Helper()
	ca := newTestCA(t, "otpgate test CA")
	cert, key := ca.issue(t, "otpgate.example.com", "otpgate.example.com", "localhost")
	cfg := strings.Replace(e2eConfig, `radius: {listen: ["127.0.0.1:0"]}`, fmt.Sprintf(`radius:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  tls_cert: %q
  tls_key: %q
  tls_client_ca: %q`, cert, key, ca.file), 1)
	cfg = strings.Replace(cfg, "\nclients:\n", fmt.Sprintf("\nclients:\n  - {name: fortigate, address: %q, tls_name: \"*.gw.example.com\", tenant: acme,\n     client_ip_attribute: Calling-Station-Id, password: gateway}\n", address), 1)
	s := startServer(t, cfg)
	if s.radsec == "" {
		t.Fatalf("no radsec listener:\n%s", s.logText())
	}
	s.cli(t, "user", "add", "lena", "--tenant", "acme")
	s.cli(t, "user", "totp", "lena", "--secret", testSecret)
	return s, ca
}

// radsecExchange sends a request over a RadSec connection, as gateways
// do: secret "radsec", no Message-Authenticator.
func radsecExchange(t *testing.T, c *tls.Conn, code radius.Code, id byte, attrs ...func(*radius.Packet)) *radius.Packet {
	t.Helper()
	p := radius.New(code, []byte("radsec"))
	p.Identifier = id
	for _, a := range attrs {
		a(p)
	}
	raw, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
	copy(resp, hdr[:])
	if _, err := io.ReadFull(c, resp[4:]); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if !radius.IsAuthenticResponse(resp, raw, []byte("radsec")) {
		t.Fatalf("response authenticator does not verify")
	}
	if code != radius.CodeAccountingRequest {
		checkResponseMA(t, resp, raw, []byte("radsec"))
	}
	ans, err := radius.Parse(resp, []byte("radsec"))
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// TestRadSecChallengeFlow runs the real server with RadSec and a gateway
// written here: the TOTP challenge flow on one TLS connection, without
// Message-Authenticator, Status-Server and accounting on the same
// connection, and the metrics count the connection.
func TestRadSecChallengeFlow(t *testing.T) {
	s, ca := startRadSec(t, "127.0.0.1/32")
	cert, key := ca.issue(t, "fw1", "fw1.gw.example.com")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c, err := tls.Dial("tcp", s.radsec, &tls.Config{RootCAs: pool, ServerName: "otpgate.example.com", Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	user := func(p *radius.Packet) {
		rfc2865.UserName_SetString(p, "lena")
		rfc2865.CallingStationID_SetString(p, "203.0.113.50")
	}
	resp := radsecExchange(t, c, radius.CodeAccessRequest, 1, user, func(p *radius.Packet) { rfc2865.UserPassword_SetString(p, "pw") })
	if resp.Code != radius.CodeAccessChallenge {
		t.Fatalf("first leg: got %s, want Access-Challenge", resp.Code)
	}
	state := rfc2865.State_Get(resp)
	resp = radsecExchange(t, c, radius.CodeAccessRequest, 2, user, func(p *radius.Packet) {
		rfc2865.UserPassword_SetString(p, totpNow(t))
		rfc2865.State_Set(p, state)
	})
	if resp.Code != radius.CodeAccessAccept {
		t.Fatalf("answer: got %s (%q), want Access-Accept", resp.Code, replyMessage(resp))
	}
	if resp := radsecExchange(t, c, radius.CodeStatusServer, 3); resp.Code != radius.CodeAccessAccept {
		t.Errorf("Status-Server: got %s, want Access-Accept", resp.Code)
	}
	resp = radsecExchange(t, c, radius.CodeAccountingRequest, 4, user, func(p *radius.Packet) {
		rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_SetString(p, "sess-tls")
	})
	if resp.Code != radius.CodeAccountingResponse {
		t.Errorf("Accounting-Request: got %s, want Accounting-Response", resp.Code)
	}
	audit := s.cli(t, "audit", "--json", "--user", "lena")
	for _, want := range []string{`"client":"fortigate"`, `"reason":"session_start"`, `"session":"sess-tls"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	if _, m := httpGet(t, "http://"+s.metrics+"/metrics"); !strings.Contains(m, "otpgate_radsec_connections 1") {
		t.Errorf("metrics lack otpgate_radsec_connections 1:\n%s", grepLines(m, "radsec"))
	}
}

// TestRadSecConfig: the RadSec keys are checked, each mistake naming its
// key; a RadSec client needs no secret.
func TestRadSecConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, key := ca.issue(t, "otpgate")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello\n"), 0o600)
	base := func(radius, client string) string {
		return fmt.Sprintf(`radius: {%s}
clients:
  - {name: udp, address: 127.0.0.1, secret: s, tenant: t}
  - {name: fw, address: 0.0.0.0/0, tenant: t%s}
tenants: [{name: t}]
`, radius, client)
	}
	good := fmt.Sprintf(`tls_listen: "[::]:2083", tls_cert: %q, tls_key: %q, tls_client_ca: %q`, cert, key, ca.file)
	for _, tc := range []struct {
		name, yaml string
		want       []string // "" means it loads
	}{
		{"good", base(good, `, tls_name: "*.gw.example.com"`), nil},
		{"no files", base(`tls_listen: "[::]:2083"`, `, tls_name: fw1.example.com`),
			[]string{"radius.tls_cert: is missing", "radius.tls_key: is missing", "radius.tls_client_ca: is missing"}},
		{"bad files", base(fmt.Sprintf(`tls_listen: "[::]:2083", tls_cert: %q, tls_key: %q, tls_client_ca: %q`, key, cert, notPEM), `, tls_name: fw1`),
			[]string{"radius.tls_cert: with radius.tls_key:", "radius.tls_client_ca: " + notPEM + " holds no PEM certificate"}},
		{"missing CA file", base(fmt.Sprintf(`tls_listen: "[::]:2083", tls_cert: %q, tls_key: %q, tls_client_ca: %q`, cert, key, dir+"/nope.pem"), `, tls_name: fw1`),
			[]string{"radius.tls_client_ca: open " + dir + "/nope.pem: no such file"}},
		{"tls_name without listener", base(``, `, tls_name: fw1.example.com`),
			[]string{"clients[1].tls_name: client fw is a RadSec client, but radius.tls_listen is not set"}},
		{"listener without RadSec clients", base(good, `, secret: s2`),
			[]string{"radius.tls_listen: no client has a tls_name"}},
		{"bad pattern", base(good, `, tls_name: "fw*.example.com"`),
			[]string{"clients[1].tls_name: \"fw*.example.com\": * stands only for a whole label"}},
		{"bad limits", base(good+`, tls_idle_timeout: -1s, tls_max_connections: -1, tls_max_connections_per_client: 20000`, `, tls_name: fw1`),
			[]string{"radius.tls_idle_timeout: -1s is out of range", "radius.tls_max_connections: -1 is out of range", "radius.tls_max_connections_per_client: 20000 is out of range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o600)
			s, err := loadConfig(path)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				fw := s.clients[1]
				if fw.TLSName != "*.gw.example.com" || string(fw.Secret) != "radsec" || s.radsec.config == nil {
					t.Errorf("client fw read as name %q secret %q; tls config %v", fw.TLSName, fw.Secret, s.radsec.config != nil)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// peer finds an interop peer's binary; in CI it must be there.
func peer(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs %s", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return path
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.LocalAddr().(*net.UDPAddr).Port
}

// runPeer starts a peer process in its own process group, killed when the
// test ends, and waits for a line of its output that contains ready. Its
// output is shown when the test fails.
func runPeer(t *testing.T, ready string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	up := make(chan error, 1)
	log := &lockedBuilder{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.add(sc.Text())
			if strings.Contains(sc.Text(), ready) {
				up <- nil
			}
		}
		up <- fmt.Errorf("%s exited:\n%s", filepath.Base(bin), log.String())
	}()
	select {
	case err := <-up:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not start:\n%s", filepath.Base(bin), log.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's output:\n%s", filepath.Base(bin), log.String())
		}
	})
}

// challengeThrough runs the TOTP challenge flow with radclient against a
// proxy's UDP address: Access-Request, Access-Challenge, the code with
// State, Access-Accept.
func challengeThrough(t *testing.T, addr, user string) {
	t.Helper()
	out := radclient(t, addr, `User-Name = "`+user+`"`, `User-Password = "pw"`,
		`Calling-Station-Id = "203.0.113.50"`, `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Challenge" {
		t.Fatalf("first leg: got %s, want Access-Challenge:\n%s", got, out)
	}
	m := stateRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("challenge without State:\n%s", out)
	}
	out = radclient(t, addr, `User-Name = "`+user+`"`, `User-Password = "`+totpNow(t)+`"`, `State = 0x`+m[1],
		`Calling-Station-Id = "203.0.113.50"`, `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Accept" {
		t.Fatalf("answer: got %s, want Access-Accept:\n%s", got, out)
	}
}

// startRadsecproxy runs radsecproxy taking UDP from radclient (secret
// testing123) and sending it over TLS to otpgate's RadSec address with the
// given certificate; it returns the UDP address.
func startRadsecproxy(t *testing.T, radsec, caFile, certFile, keyFile string) string {
	t.Helper()
	bin := peer(t, "radsecproxy", "radsecproxy")
	port := freeUDPPort(t)
	host, tlsPort, _ := net.SplitHostPort(radsec)
	conf := filepath.Join(t.TempDir(), "radsecproxy.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`ListenUDP 127.0.0.1:%d
LogLevel 5
tls otpgate {
	CACertificateFile %s
	CertificateFile %s
	CertificateKeyFile %s
}
client radclient {
	host 127.0.0.1
	type udp
	secret testing123
}
server otpgate {
	host %s
	port %s
	type tls
	tls otpgate
	secret radsec
}
realm * {
	server otpgate
}
`, port, caFile, certFile, keyFile, host, tlsPort)), 0o600)
	runPeer(t, "createlistener: listening for udp", bin, "-f", "-d", "5", "-c", conf)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestRadsecproxy: radsecproxy as the gateway's RadSec client carries the
// challenge flow; with a certificate from another CA, or from an address
// the client entry does not cover, it gets nowhere.
func TestRadsecproxy(t *testing.T) {
	peer(t, "radclient", "freeradius-utils")
	t.Run("challenge flow", func(t *testing.T) {
		s, ca := startRadSec(t, "127.0.0.1/32")
		cert, key := ca.issue(t, "fw1", "fw1.gw.example.com")
		addr := startRadsecproxy(t, s.radsec, ca.file, cert, key)
		challengeThrough(t, addr, "lena")
		if audit := s.cli(t, "audit", "--json", "--user", "lena"); !strings.Contains(audit, `"client":"fortigate"`) {
			t.Errorf("the logins did not come over RadSec from client fortigate:\n%s", audit)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		s, ca := startRadSec(t, "127.0.0.1/32")
		stranger := newTestCA(t, "stranger CA")
		cert, key := stranger.issue(t, "fw1", "fw1.gw.example.com")
		both := filepath.Join(t.TempDir(), "both.pem") // radsecproxy still trusts otpgate
		a, _ := os.ReadFile(ca.file)
		b, _ := os.ReadFile(stranger.file)
		os.WriteFile(both, append(a, b...), 0o600)
		skip := s.logLen() // radsecproxy connects as it starts
		addr := startRadsecproxy(t, s.radsec, both, cert, key)
		out := radclient(t, addr, `User-Name = "lena"`, `User-Password = "pw"`, `Message-Authenticator = 0x00`)
		if receivedRE.MatchString(out) {
			t.Fatalf("untrusted certificate: got an answer:\n%s", out)
		}
		s.waitLog(t, skip, "cause=tls_handshake_failed")
	})
	t.Run("address not the client's", func(t *testing.T) {
		s, ca := startRadSec(t, "192.0.2.0/24")
		cert, key := ca.issue(t, "fw1", "fw1.gw.example.com")
		skip := s.logLen()
		addr := startRadsecproxy(t, s.radsec, ca.file, cert, key)
		out := radclient(t, addr, `User-Name = "lena"`, `User-Password = "pw"`, `Message-Authenticator = 0x00`)
		if receivedRE.MatchString(out) {
			t.Fatalf("wrong address: got an answer:\n%s", out)
		}
		s.waitLog(t, skip, "cause=tls_unknown_client")
	})
}

// TestFreeRADIUSRadSecProxy: FreeRADIUS 3.2 proxies radclient's requests
// to otpgate over RadSec (a home_server with proto = tcp and a tls
// section), the whole challenge flow.
func TestFreeRADIUSRadSecProxy(t *testing.T) {
	peer(t, "radclient", "freeradius-utils")
	bin := peer(t, "freeradius", "freeradius")
	s, ca := startRadSec(t, "127.0.0.1/32")
	cert, key := ca.issue(t, "fr1", "fr1.gw.example.com")
	dir := filepath.Join(t.TempDir(), "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the FreeRADIUS configuration: %v\n%s", err, out)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "radiusd.conf"))
	var kept []string
	for _, l := range strings.Split(string(conf), "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "user" || f[0] == "group") {
			continue // stay the user we are
		}
		kept = append(kept, l)
	}
	write("radiusd.conf", strings.Join(kept, "\n"))
	write("clients.conf", "client radclient {\n ipaddr = 127.0.0.1\n secret = testing123\n}\n")
	host, tlsPort, _ := net.SplitHostPort(s.radsec)
	write("proxy.conf", fmt.Sprintf(`proxy server {
	default_fallback = no
}
home_server otpgate {
	type = auth
	ipaddr = %s
	port = %s
	proto = tcp
	secret = radsec
	response_window = 20
	status_check = none
	tls {
		private_key_file = %s
		certificate_file = %s
		ca_file = %s
		fragment_size = 8192
		check_crl = no
	}
}
home_server_pool otpgate {
	type = fail-over
	home_server = otpgate
}
realm otpgate {
	auth_pool = otpgate
	nostrip
}
`, host, tlsPort, key, cert, ca.file))
	sites, _ := filepath.Glob(filepath.Join(dir, "sites-enabled", "*"))
	for _, f := range append(sites, filepath.Join(dir, "mods-enabled", "eap")) {
		os.Remove(f)
	}
	port := freeUDPPort(t)
	write("sites-enabled/radsec-proxy", fmt.Sprintf(`server radsec_proxy {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		update control {
			&Proxy-To-Realm := "otpgate"
		}
	}
	authenticate {
	}
}
`, port))
	runPeer(t, "Ready to process requests", bin, "-f", "-X", "-d", dir)
	challengeThrough(t, fmt.Sprintf("127.0.0.1:%d", port), "lena")
	if audit := s.cli(t, "audit", "--json", "--user", "lena"); !strings.Contains(audit, `"client":"fortigate"`) {
		t.Errorf("the logins did not come over RadSec from client fortigate:\n%s", audit)
	}
}

// lockedBuilder collects a peer's output lines for the test's goroutines.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line + "\n")
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLoadConfigExampleRadSec keeps the example's RadSec settings true to
// the code: with tls_listen set, its files in place and its commented
// RadSec client taken in, it loads.
func TestLoadConfigExampleRadSec(t *testing.T) {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, "ca")
	cert, key := ca.issue(t, "otpgate")
	y := string(b)
	for old, repl := range map[string]string{
		"tls_listen: []":                                     `tls_listen: ["127.0.0.1:2083"]`,
		"tls_cert: /etc/otpgate/radsec.crt":                  "tls_cert: " + cert,
		"tls_key: /etc/otpgate/radsec.key":                   "tls_key: " + key,
		"tls_client_ca: /etc/otpgate/radsec-gateways-ca.pem": "tls_client_ca: " + ca.file,
	} {
		if !strings.Contains(y, old) {
			t.Fatalf("the example lacks %q", old)
		}
		y = strings.Replace(y, old, repl, 1)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(y, "\n") {
		if strings.HasPrefix(l, "  # - name: customer1-fortigate") {
			in = true
		}
		if in && !strings.HasPrefix(l, "  # ") {
			in = false
		}
		if in {
			l = "  " + l[4:]
		}
		lines = append(lines, l)
	}
	path := filepath.Join(t.TempDir(), "example.yaml")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
	s, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	last := s.clients[len(s.clients)-1]
	if last.Name != "customer1-fortigate" || last.TLSName != "fw1.customer1.example.net" || string(last.Secret) != "radsec" {
		t.Errorf("the example's RadSec client read as %s %q %q", last.Name, last.TLSName, last.Secret)
	}
	if s.radsec.idle != 5*time.Minute || s.radsec.maxConns != 1024 || s.radsec.maxPerClient != 32 {
		t.Errorf("RadSec limits read as %+v", s.radsec)
	}
}
