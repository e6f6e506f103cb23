package radius

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// TLSSecret is the shared secret of RADIUS over TLS (RFC 6614 §2.3): the
// channel protects the packets, and the secret is fixed.
const TLSSecret = "radsec"

// ServeTLS answers RADIUS over TLS (RadSec, RFC 6614) on ln until ctx is
// done, then closes ln, stops reading, answers the requests in flight,
// parked ones too, closes the connections and returns. config carries the
// server's certificate and the CAs client certificates must chain to
// (ClientCAs), or a GetConfigForClient that returns them; ServeTLS
// requires a verified client certificate and TLS 1.2 or later whatever
// config says. A connection is matched to a client by
// its certificate's names and its address (Clients.LookupTLS); its
// requests then take the same path as UDP ones, sharing MaxConcurrent,
// the retransmission cache (per connection) and the drop counters.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, config *tls.Config) error {
	s.init()
	cfg := strict(config)
	if get := config.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if c == nil || err != nil {
				return nil, err
			}
			return strict(c), nil
		}
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	for backoff := time.Duration(0); ; {
		nc, err := ln.Accept()
		if ctx.Err() != nil {
			if nc != nil {
				nc.Close()
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("radsec serve: %w", err)
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("radsec accept failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		src := addrPortOf(nc.RemoteAddr())
		if !s.radsec.open(src.Addr(), s.MaxTLSConns, s.MaxTLSConnsPerClient) {
			nc.Close()
			s.drops.add("tls_too_many_connections", src)
			continue
		}
		conns.Go(func() {
			defer s.radsec.close()
			s.serveConn(ctx, nc, tls.Server(nc, cfg), src)
		})
	}
}

// strict is a copy of c that takes TLS 1.2 or later and a verified client
// certificate.
func strict(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	c.ClientAuth = tls.RequireAndVerifyClientCert
	return c
}

// TLSConnections returns the number of RadSec connections open, handshakes
// under way included.
func (s *Server) TLSConnections() int {
	s.radsec.mu.Lock()
	defer s.radsec.mu.Unlock()
	return s.radsec.total
}

// serveConn runs one RadSec connection: handshake, match, then read
// requests until the client closes it, it is idle, stalls or misbehaves,
// which closes it, or ctx is done, which sends the answers owed first.
func (s *Server) serveConn(ctx context.Context, raw net.Conn, conn *tls.Conn, src netip.AddrPort) {
	defer conn.Close()
	deadline := time.Now().Add(s.TLSHandshakeTimeout)
	conn.SetDeadline(deadline)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	err := conn.HandshakeContext(hctx)
	cancel()
	s.radsec.handshaken(src.Addr())
	peers := conn.ConnectionState().PeerCertificates
	if err == nil && len(peers) == 0 { // strict makes sure of one; fail closed all the same
		err = errors.New("no client certificate")
	}
	if err != nil {
		s.drops.add("tls_handshake_failed", src)
		s.Log.Debug("radsec handshake failed", "src", src.String(), "err", err)
		return
	}
	names := CertNames(peers[0])
	clients := s.clients.Load()
	if clients == nil {
		clients = s.Clients
	}
	client := clients.LookupTLS(src.Addr(), names)
	if client == nil {
		// Only a certificate our CA signed gets here: worth a line each.
		s.drops.add("tls_unknown_client", src)
		s.Log.Warn("radsec connection matches no client", "src", src.String(), "names", strings.Join(names, ","))
		return
	}
	if !s.radsec.claim(client.Name, s.MaxTLSConnsPerClient) {
		s.drops.add("tls_too_many_connections", src)
		return
	}
	defer s.radsec.release(client.Name)
	conn.SetDeadline(time.Time{})

	c := &tlsConn{raw: raw, conn: conn, id: s.radsec.serial.Add(1), names: names, timeout: s.TLSWriteTimeout,
		out: make(chan []byte, 256), done: make(chan struct{}), failed: func() { s.drops.add("tls_write_failed", src) }}
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	defer writer.Wait()
	defer close(c.done) // after the answers owed are queued: the writer sends them, then stops
	defer c.wg.Wait()
	s.Log.Debug("radsec connection", "client", client.Name, "src", src.String())
	if cut := s.readConn(ctx, c, peer{addr: src, tls: c}); cut && ctx.Err() == nil {
		// The client misbehaved: close it now; answers still owed have
		// nowhere to go. When it closed the connection or went idle, an
		// answer queued just before is sent first, as on shutdown.
		raw.Close()
	}
}

// readConn reads requests off a connection and hands each to a worker
// while ctx lasts. It never holds a worker itself: it waits for the
// packet's bytes first, and for a worker's slot then. It returns true
// when the client misbehaved (stalled in a packet, sent a length the
// stream cannot be framed by, or broke the connection), false when it
// closed the connection, went idle with no answer owed, or ctx ended.
func (s *Server) readConn(ctx context.Context, c *tlsConn, to peer) (cut bool) {
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	work := context.WithoutCancel(ctx) // requests read finish even when ctx is done
	for {
		c.conn.SetReadDeadline(time.Now().Add(s.TLSIdleTimeout))
		if ctx.Err() != nil { // after the deadline is set, so that stop's is not lost
			return false
		}
		var hdr [4]byte
		n, err := io.ReadFull(c.conn, hdr[:])
		switch {
		case ctx.Err() != nil:
			return false
		case err == nil:
		case n == 0 && isTimeout(err) && c.busy.Load() > 0:
			continue // not idle: answers are owed to it
		case n == 0 && (isTimeout(err) || errors.Is(err, io.EOF)):
			return false // idle, or closed by the client
		case isTimeout(err):
			s.drops.add("tls_stalled", to.addr)
			return true
		default:
			return true
		}
		length := int(binary.BigEndian.Uint16(hdr[2:4]))
		if length < 20 || length > radius.MaxPacketLength {
			// The stream cannot be framed any more.
			s.drops.add("tls_bad_length", to.addr)
			return true
		}
		pkt := make([]byte, length)
		copy(pkt, hdr[:])
		c.conn.SetReadDeadline(time.Now().Add(s.TLSHandshakeTimeout))
		if ctx.Err() != nil {
			return false
		}
		if _, err := io.ReadFull(c.conn, pkt[4:]); err != nil {
			if ctx.Err() == nil && isTimeout(err) {
				s.drops.add("tls_stalled", to.addr)
			}
			return ctx.Err() == nil
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		c.Go(func() {
			defer func() { <-s.sem }()
			s.handle(work, to, pkt, c)
		})
	}
}

// tlsConn is an established RadSec connection as handle sees it: who it
// is, and a queue for its answers that a writer goroutine drains, so that
// workers never wait on the network and answers go out whole, one at a
// time, in the order they are ready.
type tlsConn struct {
	raw     net.Conn // the TCP connection, closed at once when a write fails
	conn    *tls.Conn
	id      uint64   // numbers the connection for the retransmission cache
	names   []string // the client certificate's names
	timeout time.Duration
	failed  func() // counts an answer lost to a failed write

	out    chan []byte   // answers to send
	done   chan struct{} // closed when no more answers will be queued
	broken atomic.Bool   // a write failed: the connection is closed

	wg   sync.WaitGroup // requests read and not yet answered
	busy atomic.Int64   // how many
}

// Go runs f, a request or a parked request's answer, counted as an answer
// owed to the connection.
func (c *tlsConn) Go(f func()) {
	c.busy.Add(1)
	c.wg.Go(func() {
		defer c.busy.Add(-1)
		f()
	})
}

// errConnBroken says an answer could not be sent: the connection failed,
// or its client did not take as many answers as it can have requests in
// flight (256 identifiers).
var errConnBroken = errors.New("radsec connection closed: a write failed or its client does not read")

// write queues an answer. It never blocks: a client too slow to take its
// answers loses its connection.
func (c *tlsConn) write(b []byte) error {
	if !c.broken.Load() {
		select {
		case c.out <- b:
			return nil
		default:
			c.fail()
		}
	}
	c.failed()
	return errConnBroken
}

// fail closes the connection after a write failed; the reader stops too.
func (c *tlsConn) fail() {
	c.broken.Store(true)
	c.raw.Close()
}

// writeLoop sends the queued answers until done is closed and the queue
// is empty, or a write fails or times out, which closes the connection.
func (c *tlsConn) writeLoop() {
	send := func(b []byte) bool {
		c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
		if _, err := c.conn.Write(b); err != nil {
			c.fail()
			c.failed()
			return false
		}
		return true
	}
	for {
		select {
		case b := <-c.out:
			if !send(b) {
				return
			}
		case <-c.done:
			for {
				select {
				case b := <-c.out:
					if !send(b) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// tlsCounts bounds RadSec connections: in all, per client, and handshakes
// under way per source address (before a client is known).
type tlsCounts struct {
	serial atomic.Uint64 // connections so far, numbering them

	mu        sync.Mutex
	total     int
	handshake map[netip.Addr]int
	perClient map[string]int
}

// open counts a new connection from addr, or reports false when there are
// max in all or perAddr handshakes under way from addr already. Each true
// is followed by handshaken and close.
func (t *tlsCounts) open(addr netip.Addr, max, perAddr int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total >= max || t.handshake[addr] >= perAddr {
		return false
	}
	if t.handshake == nil {
		t.handshake = map[netip.Addr]int{}
	}
	t.total++
	t.handshake[addr]++
	return true
}

// handshaken counts a handshake from addr as over, done or failed.
func (t *tlsCounts) handshaken(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handshake[addr]--; t.handshake[addr] <= 0 {
		delete(t.handshake, addr)
	}
}

func (t *tlsCounts) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
}

// claim counts a connection of client, or reports false when it has max.
// Each true is followed by release.
func (t *tlsCounts) claim(client string, max int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perClient[client] >= max {
		return false
	}
	if t.perClient == nil {
		t.perClient = map[string]int{}
	}
	t.perClient[client]++
	return true
}

func (t *tlsCounts) release(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perClient[client]--; t.perClient[client] <= 0 {
		delete(t.perClient, client)
	}
}

// CertNames returns the names a client certificate is matched by: its DNS
// subject alternative names, or, when it has none, its subject's common
// name.
func CertNames(cert *x509.Certificate) []string {
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames
	}
	if cert.Subject.CommonName != "" {
		return []string{cert.Subject.CommonName}
	}
	return nil
}

// MatchTLSName reports whether a certificate name matches a client's
// tls_name pattern: equal but for case, where a "*" label in the pattern
// stands for any one label ("*.gw.example.com" matches
// "fw1.gw.example.com", not "gw.example.com" nor "a.b.gw.example.com").
func MatchTLSName(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return strings.EqualFold(pattern, name)
	}
	p, n := strings.Split(pattern, "."), strings.Split(name, ".")
	if len(p) != len(n) {
		return false
	}
	for i := range p {
		if p[i] == "*" {
			if n[i] == "" {
				return false
			}
			continue
		}
		if !strings.EqualFold(p[i], n[i]) {
			return false
		}
	}
	return true
}

// CheckTLSName checks a tls_name pattern: a name without empty labels,
// where "*" may stand only for a whole label, and not for the last one.
func CheckTLSName(pattern string) error {
	if strings.TrimSpace(pattern) != pattern || pattern == "" {
		return fmt.Errorf("%q is not a certificate name such as fw1.example.com or *.gw.example.com", pattern)
	}
	labels := strings.Split(pattern, ".")
	for i, l := range labels {
		if l == "" {
			return fmt.Errorf("%q has an empty label", pattern)
		}
		if strings.Contains(l, "*") && (l != "*" || i == len(labels)-1) {
			return fmt.Errorf("%q: * stands only for a whole label that is not the last, as in *.gw.example.com", pattern)
		}
	}
	return nil
}

// addrPortOf is a connection's remote address as an AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
