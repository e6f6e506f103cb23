// Package mailtest runs a real SMTP server on loopback for tests, the way
// net/http/httptest runs an HTTP server: STARTTLS or implicit TLS with a
// certificate made at start, AUTH PLAIN and LOGIN, and every message it
// accepts handed to the test.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape a Server.
type Options struct {
	// TLS is "starttls" (offered after EHLO), "tls" (implicit TLS from the
	// first byte) or "none"; empty means "none".
	TLS string
	// Username and Password, when set, make AUTH PLAIN and LOGIN available
	// (after STARTTLS in "starttls" mode) and required before MAIL.
	Username, Password string
	// FailRcpt answers 550 to every RCPT.
	FailRcpt bool
}

// Received is one message the server accepted.
type Received struct {
	From string
	To   []string
	// Data is the message as sent, with the dot-stuffing undone.
	Data []byte
	// Auth is the user that authenticated; empty when none did.
	Auth string
	// TLS reports whether the message came over TLS.
	TLS bool
}

// Server is a running SMTP server.
type Server struct {
	ln      net.Listener
	opts    Options
	tls     *tls.Config
	pool    *x509.CertPool
	certPEM []byte
	msgs    chan Received
	wg      sync.WaitGroup
}

// NewServer starts a server on 127.0.0.1 and stops it when the test ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, msgs: make(chan Received, 64)}
	if err := s.makeCert(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Go(s.accept)
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the server's IP address.
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// CertPEM is the server's certificate in PEM, for a CA file.
func (s *Server) CertPEM() []byte { return s.certPEM }

// Messages delivers each accepted message.
func (s *Server) Messages() <-chan Received { return s.msgs }

// Next waits up to ten seconds for the next accepted message.
func (s *Server) Next(t testing.TB) Received {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the SMTP server")
		return Received{}
	}
}

func (s *Server) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
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
	s.tls = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return nil
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.session(c) })
	}
}

// session speaks SMTP with one client.
func (s *Server) session(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	secure := false
	if s.opts.TLS == "tls" {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		c, secure = tc, true
	}
	tp := textproto.NewConn(c)
	reply := func(lines ...string) bool { // lines like "250 OK"; all but the last get "-"
		for i, l := range lines {
			if i < len(lines)-1 {
				l = l[:3] + "-" + l[4:]
			}
			if tp.PrintfLine("%s", l) != nil {
				return false
			}
		}
		return true
	}
	var auth, from string
	var to []string
	canAuth := func() bool { return s.opts.Username != "" && (secure || s.opts.TLS != "starttls") }
	if !reply("220 mailtest ESMTP") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			lines := []string{"250 mailtest"}
			if s.opts.TLS == "starttls" && !secure {
				lines = append(lines, "250 STARTTLS")
			}
			if canAuth() {
				lines = append(lines, "250 AUTH PLAIN LOGIN")
			}
			lines = append(lines, "250 8BITMIME")
			reply(lines...)
		case "HELO":
			reply("250 mailtest")
		case "STARTTLS":
			if s.opts.TLS != "starttls" || secure {
				reply("502 not here")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			tp = textproto.NewConn(c)
			auth, from, to = "", "", nil
		case "AUTH":
			if !canAuth() {
				reply("502 no AUTH here")
				continue
			}
			user, ok := s.authenticate(tp, arg)
			if !ok {
				reply("535 authentication failed")
				continue
			}
			auth = user
			reply("235 welcome")
		case "MAIL":
			if s.opts.Username != "" && auth == "" {
				reply("530 authentication required")
				continue
			}
			from, to = angle(arg), nil
			reply("250 OK")
		case "RCPT":
			if s.opts.FailRcpt {
				reply("550 no such mailbox")
				continue
			}
			to = append(to, angle(arg))
			reply("250 OK")
		case "DATA":
			if from == "" || len(to) == 0 {
				reply("503 MAIL and RCPT first")
				continue
			}
			reply("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.msgs <- Received{From: from, To: to, Data: bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")), Auth: auth, TLS: secure}
			from, to = "", nil
			reply("250 queued")
		case "RSET":
			from, to = "", nil
			reply("250 OK")
		case "NOOP":
			reply("250 OK")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

// authenticate runs AUTH PLAIN or LOGIN and returns the user.
func (s *Server) authenticate(tp *textproto.Conn, arg string) (string, bool) {
	mech, initial, _ := strings.Cut(arg, " ")
	ask := func(prompt string) (string, bool) {
		if tp.PrintfLine("334 %s", prompt) != nil {
			return "", false
		}
		l, err := tp.ReadLine()
		if err != nil {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(l)
		return string(b), err == nil
	}
	var user, pass string
	switch strings.ToUpper(mech) {
	case "PLAIN":
		var raw string
		if initial != "" {
			b, err := base64.StdEncoding.DecodeString(initial)
			if err != nil {
				return "", false
			}
			raw = string(b)
		} else {
			var ok bool
			if raw, ok = ask(""); !ok {
				return "", false
			}
		}
		parts := strings.Split(raw, "\x00")
		if len(parts) != 3 {
			return "", false
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		var ok bool
		if user, ok = ask(base64.StdEncoding.EncodeToString([]byte("Username:"))); !ok {
			return "", false
		}
		if pass, ok = ask(base64.StdEncoding.EncodeToString([]byte("Password:"))); !ok {
			return "", false
		}
	default:
		return "", false
	}
	return user, user == s.opts.Username && pass == s.opts.Password
}

// angle takes the address out of "FROM:<a@b>" or "TO:<a@b> SIZE=1".
func angle(arg string) string {
	i, j := strings.IndexByte(arg, '<'), strings.IndexByte(arg, '>')
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}
