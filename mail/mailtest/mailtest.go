// Package mailtest runs a real SMTP server on loopback for tests, the way
// net/http/httptest runs an HTTP server: STARTTLS or implicit TLS with a
// certificate made at start, AUTH PLAIN and LOGIN, and every message it
// accepts handed to the test.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// Options shape a Server.
type Options struct {
	// TLS is "starttls" (offered after EHLO), "tls" (implicit TLS from the
	// first byte) or "none"; empty means "none".
	TLS string
	// Username and Password, when Username is set, make AUTH PLAIN and
	// LOGIN available (after STARTTLS in "starttls" mode) and required
	// before MAIL. An empty Username means no AUTH at all.
	Username, Password string
	// FailRcpt answers 550 to every RCPT; false accepts every recipient.
	FailRcpt bool
}

// Received is one message the server accepted.
type Received struct {
	// From is the MAIL FROM address, without angle brackets; empty for
	// the null sender.
	From string
	// To holds the RCPT TO addresses, in order.
	To []string
	// Data is the message as sent, with the dot-stuffing undone and CRLF
	// line endings.
	Data []byte
	// Auth is the user that authenticated; empty when none did.
	Auth string
	// TLS reports whether the message came over TLS.
	TLS bool
}

// Server is a running SMTP server. Sessions run concurrently, one
// goroutine each.
type Server struct {
	ln      net.Listener
	opts    Options
	tls     *tls.Config
	pool    *x509.CertPool
	certPEM []byte
	msgs    chan Received
	done    chan struct{} // closed when the server stops
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open sessions, closed when the server stops
}

// NewServer starts a server on 127.0.0.1 and stops it, closing every
// session, when the test ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	switch opts.TLS {
	case "", "none", "starttls", "tls":
	default:
		t.Fatalf("mailtest: TLS %q is not one of starttls, tls, none", opts.TLS)
	}
	s := &Server{opts: opts, msgs: make(chan Received, 64), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	if err := s.makeCert(); err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	s.ln = ln
	s.wg.Go(s.accept)
	t.Cleanup(s.close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the server's IP address, "127.0.0.1".
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// CertPool trusts the server's certificate, which names 127.0.0.1, ::1
// and localhost.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// CertPEM is the server's certificate in PEM, for a CA file.
func (s *Server) CertPEM() []byte { return s.certPEM }

// Messages delivers each accepted message. The server has put a message
// here before it tells the client it took it, so a message is waiting as
// soon as the client's send returns.
func (s *Server) Messages() <-chan Received { return s.msgs }

// Next waits up to ten seconds for the next accepted message, and fails
// the test when none comes.
func (s *Server) Next(t testing.TB) Received {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case m := <-s.msgs:
		return m
	case <-timer.C:
		t.Fatal("mailtest: no message reached the SMTP server")
		return Received{}
	}
}

// close stops accepting, ends every session and waits for them.
func (s *Server) close() {
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		})
	}
}

// makeCert makes a self-signed ECDSA certificate for the loopback names.
func (s *Server) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	s.pool = x509.NewCertPool()
	s.pool.AddCert(cert)
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	return nil
}
