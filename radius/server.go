// Package radius is otpgate's RADIUS authentication server. It extends
// layeh.com/radius the way net/http is shaped: a Server reads datagrams and
// hands each authentic Access-Request to a Handler. On the way it does what
// the library leaves out: it drops packets from unknown sources, checks
// Message-Authenticator (RFC 3579), answers retransmissions from a cache
// (RFC 5080), copies Proxy-State into responses, bounds concurrency and
// survives a panicking handler. ServeTLS does the same for RADIUS over TLS
// (RadSec, RFC 6614).
package radius

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// Request is an authentic Access-Request and where it came from.
type Request struct {
	Client *Client
	Remote netip.AddrPort
	*radius.Packet
}

// Response is what a Handler answers. Message-Authenticator and the
// request's Proxy-States are added by the Server.
type Response struct {
	Code       radius.Code
	Attributes radius.Attributes
	// Later, when not nil, parks the request instead of answering it now
	// (Code and Attributes are then ignored): its worker goes back to the
	// pool at once, and the Server answers with what Later returns, in a
	// goroutine of its own, exactly as if the handler had returned it; a
	// nil Response from Later means no answer. Until then the request
	// stays "in progress" in the retransmission cache, so copies of it are
	// dropped; afterwards they get the cached answer. Later must return
	// in bounded time: Serve waits for parked requests before returning.
	Later func() *Response
}

// Handler answers requests. A nil Response means no answer at all.
type Handler interface {
	ServeRADIUS(ctx context.Context, r *Request) *Response
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, r *Request) *Response

// ServeRADIUS calls f.
func (f HandlerFunc) ServeRADIUS(ctx context.Context, r *Request) *Response { return f(ctx, r) }

// Server answers RADIUS authentication requests on one or more sockets.
// Its fields must be set before the first call to Serve.
type Server struct {
	// Handler decides Access-Requests; nil means Access-Requests are
	// dropped (an accounting-only listener).
	Handler Handler
	// Accounting records Accounting-Requests, which are then acknowledged;
	// nil means they are dropped.
	Accounting func(ctx context.Context, r *Request)
	// Clients are the gateways allowed to send requests. Required.
	Clients *Clients
	// MaxConcurrent bounds requests handled at once. Defaults to 256.
	MaxConcurrent int
	// DuplicateWindow is how long answers are kept for retransmissions.
	// Defaults to 30 s.
	DuplicateWindow time.Duration
	// MaxDuplicates bounds the answers kept. Defaults to 262144.
	MaxDuplicates int
	// MaxDuplicateBytes bounds the memory the answers kept take, their
	// keys and bookkeeping included: past it the oldest go first, even
	// inside the window. Defaults to DefaultMaxDuplicateBytes.
	MaxDuplicateBytes int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log receives dropped-packet notices (rate-limited) and panics.
	// Defaults to discarding.
	Log *slog.Logger

	// TLSHandshakeTimeout bounds a RadSec handshake, and reading the rest
	// of a packet once its first bytes have come. Defaults to 10 s.
	TLSHandshakeTimeout time.Duration
	// TLSIdleTimeout closes a RadSec connection that has sent nothing for
	// this long while no answer is owed to it. Defaults to 5 min.
	TLSIdleTimeout time.Duration
	// TLSWriteTimeout bounds writing an answer to a RadSec connection; one
	// that does not take its answers is closed. Defaults to 10 s.
	TLSWriteTimeout time.Duration
	// MaxTLSConns bounds the RadSec connections open at once, handshakes
	// under way included. Defaults to 1024.
	MaxTLSConns int
	// MaxTLSConnsPerClient bounds the connections of one RadSec client,
	// and the handshakes under way from one address. Defaults to 32.
	MaxTLSConnsPerClient int

	once    sync.Once
	clients atomic.Pointer[Clients] // set by SetClients; nil means Clients
	sem     chan struct{}
	cache   *replayCache
	drops   *dropCounter
	radsec  tlsCounts

	retransmits atomic.Uint64
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxConcurrent <= 0 {
			s.MaxConcurrent = 256
		}
		if s.DuplicateWindow <= 0 {
			s.DuplicateWindow = 30 * time.Second
		}
		if s.MaxDuplicates <= 0 {
			s.MaxDuplicates = 262144
		}
		if s.MaxDuplicateBytes <= 0 {
			s.MaxDuplicateBytes = DefaultMaxDuplicateBytes
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		s.TLSHandshakeTimeout = cmp.Or(s.TLSHandshakeTimeout, 10*time.Second)
		s.TLSIdleTimeout = cmp.Or(s.TLSIdleTimeout, 5*time.Minute)
		s.TLSWriteTimeout = cmp.Or(s.TLSWriteTimeout, 10*time.Second)
		s.MaxTLSConns = cmp.Or(s.MaxTLSConns, 1024)
		s.MaxTLSConnsPerClient = cmp.Or(s.MaxTLSConnsPerClient, 32)
		s.sem = make(chan struct{}, s.MaxConcurrent)
		s.cache = newReplayCache(s.DuplicateWindow, s.MaxDuplicates, s.MaxDuplicateBytes)
		s.drops = newDropCounter(s.Log, s.Now)
	})
}

// Dropped returns how many packets were dropped, by cause.
func (s *Server) Dropped() map[string]uint64 {
	s.init()
	return s.drops.snapshot()
}

// Retransmissions returns how many retransmitted requests were answered
// from the cache.
func (s *Server) Retransmissions() uint64 { return s.retransmits.Load() }

// Serve reads requests from conn until ctx is done, then waits for the
// requests in flight, parked ones too, to be answered and returns. It
// does not close conn. Serve may be called for several sockets at once; they share the bound
// on concurrency and the retransmission cache.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	s.init()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	l := &udpListener{
		s:    s,
		ctx:  ctx,
		work: context.WithoutCancel(ctx), // requests in flight finish even after ctx is done: that is the drain
		conn: conn,
	}
	if l.udp, _ = conn.(*net.UDPConn); l.udp != nil {
		l.raw = newRawUDP(l.udp) // nil where it cannot be had
	}
	l.workers.Store(1)
	l.idle.Store(1)
	l.inflight.Add(1)
	err := l.serve() // Serve's own goroutine is the first worker
	l.inflight.Done()
	l.inflight.Wait()
	if l.raw != nil {
		l.raw.close() // no answer is left to send
	}
	return err
}

// udpListener is one socket's workers. Each worker reads a datagram and
// handles it itself, so that no hand-over from a reading goroutine to a
// handling one (a goroutine wake-up) lies between a request's arrival and
// its answer. While a worker handles what it read, another waits in the
// read (the socket serialises concurrent reads): when none is left
// waiting, the worker starts one more, up to MaxConcurrent. Each request
// holds a slot of s.sem while it is handled, so that there are never more
// than MaxConcurrent requests handled at once over all sockets; idle
// workers wait in the read until Serve returns.
type udpListener struct {
	s        *Server
	ctx      context.Context // Serve's: when done, workers stop reading
	work     context.Context // the requests': not cancelled
	conn     net.PacketConn
	udp      *net.UDPConn // conn, when it is one: reads allocate no address
	raw      *rawUDP      // udp's own descriptor, past Go's locks; nil if none
	workers  atomic.Int32 // started, this goroutine included
	idle     atomic.Int32 // workers not handling a request: reading, or about to
	inflight sync.WaitGroup
}

// serve is one worker: it reads and handles requests until ctx is done,
// or the socket is closed.
func (l *udpListener) serve() error {
	s := l.s
	// Handled before the next read: the request is parsed into packets
	// of its own, and nothing keeps the bytes read.
	buf := make([]byte, radius.MaxPacketLength+1)
	for {
		n, from, err := l.read(buf)
		if l.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("radius serve: %w", err)
			}
			s.Log.Warn("read failed", "err", err)
			continue
		}
		if !from.IsValid() {
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-l.ctx.Done():
			return nil
		}
		if l.idle.Add(-1) == 0 {
			l.spawn() // someone must read while this one handles
		}
		s.handle(l.work, peer{conn: l.conn, raw: l.raw, addr: from}, buf[:n], &l.inflight)
		<-s.sem
		l.idle.Add(1)
	}
}

// read returns the next datagram into buf. One already waiting is taken
// at once, past the socket's read lock (rawUDP); only when none is does
// the worker wait in Go's read, where idle workers queue on that lock.
func (l *udpListener) read(buf []byte) (int, netip.AddrPort, error) {
	if l.raw != nil {
		// Requests under way go before a new one: the goroutines the last
		// request woke (writers told that their commit is done, say) run
		// first, where otherwise a worker that finds a datagram waiting
		// would keep its processor from them request after request.
		runtime.Gosched()
		if n, from, ok := l.raw.tryRead(buf); ok {
			return n, from, nil
		}
	}
	if l.udp != nil {
		return l.udp.ReadFromUDPAddrPort(buf)
	}
	n, addr, err := l.conn.ReadFrom(buf)
	var from netip.AddrPort
	if a, ok := addr.(*net.UDPAddr); ok {
		from = a.AddrPort()
	}
	return n, from, err
}

// spawn starts one more worker, unless MaxConcurrent are running: then
// the next one that has answered reads next.
func (l *udpListener) spawn() {
	if l.workers.Add(1) > int32(l.s.MaxConcurrent) {
		l.workers.Add(-1)
		return
	}
	l.idle.Add(1)
	l.inflight.Go(func() { l.serve() }) // the first worker reports the socket's end
}

// peer is where a request came from and where its answer goes: a UDP
// sender, or a RadSec connection. It is passed by value, so that the UDP
// path allocates nothing for it.
type peer struct {
	conn net.PacketConn // the UDP socket; nil over TLS
	raw  *rawUDP        // conn's own descriptor, when there is one
	addr netip.AddrPort // the sender, as the socket reported it
	tls  *tlsConn       // the RadSec connection; nil over UDP
}

// write sends an answer to the peer.
func (p peer) write(b []byte) error {
	if p.tls != nil {
		return p.tls.write(b)
	}
	if p.raw != nil {
		if err := p.raw.write(b, p.addr); err != errWouldBlock {
			return err
		}
	}
	return writeTo(p.conn, b, p.addr)
}

// starter runs a parked request's answer in a goroutine it waits for;
// *sync.WaitGroup is one.
type starter interface{ Go(func()) }

// handle takes one request from arrival to answer, or to parked. A parked
// request is counted in parked until it is answered; the caller must
// itself be counted there, so that Add never starts from zero.
func (s *Server) handle(ctx context.Context, to peer, raw []byte, parked starter) {
	src := netip.AddrPortFrom(to.addr.Addr().Unmap(), to.addr.Port())
	clients := s.clients.Load()
	if clients == nil {
		clients = s.Clients
	}
	var client *Client
	var connID uint64
	if to.tls != nil {
		// Matched again per request, so that a reload that removes the
		// client stops its connections too.
		client, connID = clients.LookupTLS(src.Addr(), to.tls.names), to.tls.id
	} else {
		client = clients.Lookup(src.Addr())
	}
	if client == nil {
		s.drops.add("unknown_client", src)
		if to.tls != nil {
			to.tls.raw.Close() // its client is gone on a reload: so is the connection
		}
		return
	}
	if len(raw) < 20 || len(raw) > radius.MaxPacketLength {
		s.drops.add("malformed", src)
		return
	}
	length := int(binary.BigEndian.Uint16(raw[2:4]))
	if length < 20 || length > len(raw) { // below 20 not even the header is left
		s.drops.add("malformed", src)
		return
	}
	raw = raw[:length]
	code := radius.Code(raw[0])
	switch {
	case code == radius.CodeAccessRequest && s.Handler != nil:
	case code == radius.CodeStatusServer:
	case code == radius.CodeAccountingRequest && s.Accounting != nil:
		if !radius.IsAuthenticRequest(raw, client.Secret) {
			s.drops.add("bad_authenticator", src)
			return
		}
	default:
		s.drops.add("unsupported_code", src)
		return
	}
	pkt, err := parsePacket(raw, client.Secret)
	if err != nil {
		s.drops.add("malformed", src)
		return
	}
	switch err := checkMessageAuthenticator(raw, client.Secret); {
	case errors.Is(err, errNoMessageAuthenticator):
		// Status-Server must carry one (RFC 5997); Access-Requests where
		// the client requires it, or where a Proxy-State without one
		// smells of BlastRADIUS (limit_proxy_state).
		switch {
		case to.tls != nil:
			// Over TLS the channel carries integrity (RFC 6614 §2.3).
		case code == radius.CodeStatusServer,
			code == radius.CodeAccessRequest && client.RequireMessageAuthenticator:
			s.drops.add("missing_message_authenticator", src)
			return
		case code == radius.CodeAccessRequest && client.LimitProxyState && hasAttr(raw, typeProxyState):
			s.drops.add("proxy_state_without_message_authenticator", src)
			return
		}
	case err != nil:
		s.drops.add("bad_message_authenticator", src, "client", client.Name)
		return
	}

	key := replayKey{src: src, conn: connID, id: pkt.Identifier, auth: pkt.Authenticator}
	if cached, seen := s.cache.begin(key, s.Now()); seen {
		if cached == nil {
			s.drops.add("duplicate_in_progress", src)
			return
		}
		s.retransmits.Add(1)
		to.write(cached)
		return
	}
	r := &Request{Client: client, Remote: src, Packet: pkt}
	resp := s.serveSafely(ctx, r)
	if resp != nil && resp.Later != nil {
		// Parked: this worker is free; the answer comes when Later returns.
		later := resp.Later
		parked.Go(func() { s.answer(to, key, r, s.laterSafely(r, later)) })
		return
	}
	s.answer(to, key, r, resp)
}

// answer encodes resp to r, caches it for retransmissions and sends it to
// the peer; a nil resp means no answer, and a retransmission is then
// decided afresh.
func (s *Server) answer(to peer, key replayKey, r *Request, resp *Response) {
	if resp == nil {
		s.cache.forget(key)
		return
	}
	b, err := encodeResponse(resp.Code, resp.Attributes, r.Packet, r.Client.Secret)
	if err != nil {
		s.cache.forget(key)
		s.Log.Error("encode response", "client", r.Client.Name, "err", err)
		return
	}
	s.cache.finish(key, b, s.Now())
	if err := to.write(b); err != nil && to.tls == nil { // TLS counts its own
		s.Log.Warn("write response", "client", r.Client.Name, "err", err)
	}
}

// writeTo sends b to, without allocating an address on a UDP socket.
func writeTo(conn net.PacketConn, b []byte, to netip.AddrPort) error {
	if udp, ok := conn.(*net.UDPConn); ok {
		_, err := udp.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// SetClients puts a new list of gateways in force, as on a reload;
// requests under way finish with the client they were matched to.
func (s *Server) SetClients(c *Clients) { s.clients.Store(c) }

// serveSafely answers a request by its code and turns a panic into no answer.
func (s *Server) serveSafely(ctx context.Context, r *Request) (resp *Response) {
	defer func() {
		if v := recover(); v != nil {
			s.drops.add("panic", r.Remote)
			s.Log.Error("handler panic", "client", r.Client.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp = nil
		}
	}()
	switch r.Code {
	case radius.CodeStatusServer:
		// RFC 5997: alive. An authentication listener says so with an
		// Access-Accept, an accounting one with an Accounting-Response.
		if s.Handler != nil {
			return &Response{Code: radius.CodeAccessAccept}
		}
		return &Response{Code: radius.CodeAccountingResponse}
	case radius.CodeAccountingRequest:
		s.Accounting(ctx, r)
		return &Response{Code: radius.CodeAccountingResponse}
	}
	return s.Handler.ServeRADIUS(ctx, r)
}

// laterSafely waits for the answer of a parked request and turns a panic
// into no answer. A Response that asks to be parked again is no answer.
func (s *Server) laterSafely(r *Request, later func() *Response) (resp *Response) {
	defer func() {
		if v := recover(); v != nil {
			s.drops.add("panic", r.Remote)
			s.Log.Error("handler panic", "client", r.Client.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp = nil
		}
	}()
	if resp = later(); resp != nil && resp.Later != nil {
		s.Log.Error("a parked request was parked again; not answered", "client", r.Client.Name)
		return nil
	}
	return resp
}

// hasAttr reports whether a well-formed packet carries an attribute of type t.
func hasAttr(raw []byte, t radius.Type) bool {
	for b := raw[20:]; len(b) >= 2 && int(b[1]) >= 2 && int(b[1]) <= len(b); b = b[b[1]:] {
		if radius.Type(b[0]) == t {
			return true
		}
	}
	return false
}
