package radius

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
)

// pki is a test CA that issues certificates good for both ends of TLS.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &pki{cert: cert, key: key, pool: pool}
}

// issue makes a certificate with common name cn and DNS names dns.
func (p *pki) issue(t testing.TB, cn string, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsHarness is a Server answering RadSec on a loopback listener.
type tlsHarness struct {
	srv   *Server
	addr  string
	ca    *pki
	clock *fakeClock
	log   *logRecorder
	stop  context.CancelFunc
	done  chan error
}

// tlsClient is a RadSec client entry for certificate name "gw.example.com"
// connecting from loopback.
func tlsClient() *Client {
	return &Client{Name: "gw-tls", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(TLSSecret), TLSName: "*.example.com"}
}

// startTLS runs srv's ServeTLS on 127.0.0.1 until the test ends.
func startTLS(t *testing.T, srv *Server) *tlsHarness {
	t.Helper()
	return startTLSWith(t, srv, nil)
}

// startTLSWith is startTLS with the config ServeTLS gets made by wrap
// from the plain one: certificate and client CAs, nothing else.
func startTLSWith(t *testing.T, srv *Server, wrap func(*tls.Config) *tls.Config) *tlsHarness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &tlsHarness{srv: srv, addr: ln.Addr().String(), ca: newPKI(t, "test CA"), clock: &fakeClock{now: t0},
		log: newLogRecorder(), done: make(chan error, 1)}
	if srv.Now == nil {
		srv.Now = h.clock.Now
	}
	if srv.Log == nil {
		srv.Log = slog.New(h.log)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{h.ca.issue(t, "otpgate.example.com", "otpgate.example.com")}, ClientCAs: h.ca.pool}
	if wrap != nil {
		cfg = wrap(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { h.done <- srv.ServeTLS(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("ServeTLS: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ServeTLS did not return after its context was cancelled")
		}
	})
	return h
}

// dial connects with a certificate (none when cert is nil) and completes
// the handshake; it returns the handshake's error, if any.
func (h *tlsHarness) dial(t *testing.T, cert *tls.Certificate, max uint16) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: h.ca.pool, ServerName: "otpgate.example.com", MaxVersion: max}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", h.addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	// With TLS 1.3 the server refuses a certificate after the client's
	// handshake is done: a read sees it.
	c.SetReadDeadline(time.Now().Add(answerWait))
	return c, nil
}

// connect is dial with a client certificate for gw.example.com that must work.
func (h *tlsHarness) connect(t *testing.T) *tls.Conn {
	t.Helper()
	cert := h.ca.issue(t, "ignored-cn", "gw.example.com")
	c, err := h.dial(t, &cert, 0)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

// readPacket reads one RADIUS packet off a stream.
func readPacket(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(answerWait))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
	copy(b, hdr[:])
	if _, err := io.ReadFull(c, b[4:]); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return b
}

// wantClosed checks that the server closes c, and that it sent nothing
// before.
func wantClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(answerWait))
	n, err := c.Read(make([]byte, 1))
	if isTimeout(err) {
		t.Fatalf("connection still open after %s", answerWait)
	}
	if err == nil || n > 0 {
		t.Fatalf("got %d bytes, want the connection closed", n)
	}
}

// request is an Access-Request over TLS: secret "radsec", no
// Message-Authenticator.
func tlsRequest(t *testing.T, id byte, user string) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(TLSSecret))
	p.Identifier = id
	p.Add(typeUserName, radius.Attribute(user))
	p.Add(typeProxyState, radius.Attribute("ps-"+user))
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestTLSAnswers: requests without Message-Authenticator, several in
// flight on one connection, a parked one answered after a later one;
// every answer authentic under "radsec" with Message-Authenticator first
// and the request's Proxy-State; Status-Server answered; a retransmission
// on the same connection gets the cached answer, the same bytes on another
// connection are a new request.
func TestTLSAnswers(t *testing.T) {
	ph := &parkingHandler{parked: make(chan struct{}, 4), release: make(chan *Response, 4)}
	var calls sync.Map
	h := startTLS(t, &Server{Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
		n, _ := calls.LoadOrStore(string(r.Get(typeUserName)), new(int))
		*n.(*int)++
		return ph.ServeRADIUS(ctx, r)
	}), Clients: NewClients([]*Client{tlsClient()}), MaxConcurrent: 1})
	secret := []byte(TLSSecret)
	c := h.connect(t)

	held, alice := tlsRequest(t, 1, "held"), tlsRequest(t, 2, "alice")
	write(t, c, append(append([]byte{}, held...), alice...)) // two in one write
	<-ph.parked
	got := readPacket(t, c)
	checkAnswer(t, got, alice, secret)
	if p, _ := radius.Parse(got, secret); string(p.Get(typeProxyState)) != "ps-alice" {
		t.Errorf("Proxy-State: got %q, want ps-alice", p.Get(typeProxyState))
	}
	aliceAnswer := got
	ph.release <- &Response{Code: radius.CodeAccessReject}
	got = readPacket(t, c)
	checkAnswer(t, got, held, secret)
	if got[0] != byte(radius.CodeAccessReject) {
		t.Errorf("parked answer: got code %d, want Access-Reject", got[0])
	}

	write(t, c, alice) // a retransmission on the same connection
	if again := readPacket(t, c); !bytes.Equal(again, aliceAnswer) {
		t.Errorf("retransmission: got %x, want the first answer %x", again, aliceAnswer)
	}
	if n, _ := calls.Load("alice"); *n.(*int) != 1 {
		t.Errorf("retransmission on the same connection: handler called %d times, want 1", *n.(*int))
	}
	if h.srv.Retransmissions() != 1 {
		t.Errorf("Retransmissions: got %d, want 1", h.srv.Retransmissions())
	}
	other := h.connect(t)
	write(t, other, alice)
	checkAnswer(t, readPacket(t, other), alice, secret)
	if n, _ := calls.Load("alice"); *n.(*int) != 2 {
		t.Errorf("same bytes on another connection: handler called %d times, want 2", *n.(*int))
	}

	status := radius.New(radius.CodeStatusServer, secret)
	status.Identifier = 9
	sw, _ := status.Encode()
	write(t, c, sw)
	if got := readPacket(t, c); got[0] != byte(radius.CodeAccessAccept) {
		t.Errorf("Status-Server: got code %d, want Access-Accept", got[0])
	} else {
		checkAnswer(t, got, sw, secret)
	}
}

// TestTLSRefused: no certificate, one from another CA, an old TLS version,
// a certificate for no client, and the right certificate from an address
// outside the client's: all refused, and counted.
func TestTLSRefused(t *testing.T) {
	elsewhere := tlsClient()
	elsewhere.Name, elsewhere.TLSName, elsewhere.Prefix = "far", "far.example.org", netip.MustParsePrefix("192.0.2.0/24")
	h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient(), elsewhere})})
	stranger := newPKI(t, "stranger CA")
	untrusted := stranger.issue(t, "gw", "gw.example.com")
	noClient := h.ca.issue(t, "x", "gw.example.net")
	far := h.ca.issue(t, "x", "far.example.org")
	good := h.ca.issue(t, "x", "gw.example.com")
	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		max   uint16
		cause string
	}{
		{"no certificate", nil, 0, "tls_handshake_failed"},
		{"untrusted CA", &untrusted, 0, "tls_handshake_failed"},
		{"untrusted CA, TLS 1.2", &untrusted, tls.VersionTLS12, "tls_handshake_failed"},
		{"TLS 1.1", &good, tls.VersionTLS11, "tls_handshake_failed"},
		{"name of no client", &noClient, 0, "tls_unknown_client"},
		{"address not the client's", &far, 0, "tls_unknown_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.dial(t, tc.cert, tc.max)
			if err == nil {
				write(t, c, tlsRequest(t, 1, "alice"))
				wantClosed(t, c)
			}
			h.waitDrop(t, tc.cause)
		})
	}
}

// waitDrop waits until the server logs a drop for cause; a drop since the
// last call, of any cause, is logged (the clock moves past the log's
// rate limit each time).
func (h *tlsHarness) waitDrop(t *testing.T, cause string) {
	t.Helper()
	timeout := time.After(answerWait)
	for {
		select {
		case got := <-h.log.causes:
			if got == cause {
				h.clock.Advance(time.Minute)
				return
			}
		case <-timeout:
			t.Fatalf("no %q drop logged; drops so far: %v", cause, h.srv.Dropped())
		}
	}
}

// TestTLSStrictConfig: a config from GetConfigForClient (as a reload puts
// in force) that asks for no client certificate and allows TLS 1.0 still
// gets neither.
func TestTLSStrictConfig(t *testing.T) {
	h := startTLSWith(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()})},
		func(c *tls.Config) *tls.Config {
			c.ClientAuth, c.MinVersion = tls.NoClientCert, tls.VersionTLS10
			return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c, nil }}
		})
	good := h.ca.issue(t, "x", "gw.example.com")
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		max  uint16
	}{{"no certificate", nil, 0}, {"TLS 1.1", &good, tls.VersionTLS11}} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := h.dial(t, tc.cert, tc.max); err == nil {
				write(t, c, tlsRequest(t, 1, "alice"))
				wantClosed(t, c)
			}
			h.waitDrop(t, "tls_handshake_failed")
		})
	}
	answered(t, h.connect(t), 1)
}
