package radius

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
)

// loopbacks are the addresses the server tests listen on. IPv6 is skipped
// where ::1 cannot be bound.
var loopbacks = []string{"127.0.0.1:0", "[::1]:0"}

// answerWait bounds waiting for an answer that must come; noAnswerWait is
// how long silence counts as "no answer".
const (
	answerWait   = 5 * time.Second
	noAnswerWait = 300 * time.Millisecond
)

// fakeClock is an injected Server.Now that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a Server answering on a real loopback socket.
type harness struct {
	srv   *Server
	addr  string // the server's host:port
	clock *fakeClock
	log   *logRecorder
	stop  context.CancelFunc // cancels Serve's context
	done  chan struct{}      // closed when Serve has returned
	err   error              // Serve's result, set before done is closed
}

// loopbackClient is a Client for the loopback address laddr listens on.
func loopbackClient(t testing.TB, laddr string) *Client {
	t.Helper()
	a := netip.MustParseAddrPort(laddr).Addr()
	return &Client{Name: "gw-" + a.String(), Prefix: netip.PrefixFrom(a, a.BitLen()), Secret: testSecret}
}

// startServer runs srv on laddr until the test ends. Unless already set,
// srv's clock is a fakeClock and its log a logRecorder.
func startServer(t *testing.T, laddr string, srv *Server) *harness {
	t.Helper()
	pc, err := net.ListenPacket("udp", laddr)
	if err != nil {
		if netip.MustParseAddrPort(laddr).Addr().Is6() {
			t.Skipf("IPv6 loopback unavailable: %v", err)
		}
		t.Fatalf("listen %s: %v", laddr, err)
	}
	h := &harness{srv: srv, addr: pc.LocalAddr().String(), clock: &fakeClock{now: t0},
		log: newLogRecorder(), done: make(chan struct{})}
	if srv.Now == nil {
		srv.Now = h.clock.Now
	}
	if srv.Log == nil {
		srv.Log = slog.New(h.log)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() {
		h.err = srv.Serve(ctx, pc)
		close(h.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
			if h.err != nil {
				t.Errorf("Serve: got %v, want nil", h.err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context was cancelled")
		}
		pc.Close()
	})
	return h
}

// waitDrop waits until the server logs a drop for cause. A new cause is
// always logged; the same one again only after the clock moves 10 s.
func (h *harness) waitDrop(t *testing.T, cause string) {
	t.Helper()
	timeout := time.After(answerWait)
	for {
		select {
		case got := <-h.log.causes:
			if got == cause {
				return
			}
		case <-timeout:
			t.Fatalf("no %q drop logged; drops so far: %v", cause, h.srv.Dropped())
		}
	}
}

func (h *harness) wantDropped(t *testing.T, want map[string]uint64) {
	t.Helper()
	if want == nil {
		want = map[string]uint64{}
	}
	if got := h.srv.Dropped(); !maps.Equal(got, want) {
		t.Errorf("Dropped: got %v, want %v", got, want)
	}
}

// exchange sends p with layeh's client, once, and waits up to timeout.
func exchange(addr string, p *radius.Packet, timeout time.Duration) (*radius.Packet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := radius.Client{Retry: 0}
	return c.Exchange(ctx, p, addr)
}

func wantNoAnswer(t *testing.T, addr string, p *radius.Packet) {
	t.Helper()
	resp, err := exchange(addr, p, noAnswerWait)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got (%v, %v), want no answer", code(resp), err)
	}
}

func code(p *radius.Packet) string {
	if p == nil {
		return "<nil>"
	}
	return p.Code.String()
}

// checkAnswer checks that resp is an authentic answer to the request
// reqWire: Message-Authenticator first and right, Response Authenticator
// right.
func checkAnswer(t *testing.T, resp, reqWire []byte, secret []byte) {
	t.Helper()
	var auth [16]byte
	copy(auth[:], reqWire[4:20])
	if err := verifyResponseMA(resp, auth, secret); err != nil {
		t.Errorf("Message-Authenticator: %v", err)
	}
	if !radius.IsAuthenticResponse(resp, reqWire, secret) {
		t.Errorf("Response Authenticator does not verify")
	}
	if len(resp) > 1 && len(reqWire) > 1 && resp[1] != reqWire[1] {
		t.Errorf("identifier: got %d, want %d", resp[1], reqWire[1])
	}
}

// wireOf is the wire form of a packet as received.
func wireOf(t *testing.T, p *radius.Packet) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countingHandler answers Access-Accept with Reply-Message "call N".
func countingHandler(calls *atomic.Int64) Handler {
	return HandlerFunc(func(ctx context.Context, r *Request) *Response {
		n := calls.Add(1)
		return &Response{Code: radius.CodeAccessAccept,
			Attributes: radius.Attributes{avp(typeReplyMessage, fmt.Sprintf("call %d", n))}}
	})
}

func replyOf(t *testing.T, wire []byte) string {
	t.Helper()
	p, err := radius.Parse(wire, testSecret)
	if err != nil {
		t.Fatalf("parse answer: %v", err)
	}
	return string(p.Get(typeReplyMessage))
}

func newSignedRequest(t *testing.T, user string) (*radius.Packet, []byte) {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, testSecret)
	p.Add(typeUserName, radius.Attribute(user))
	return p, signRequest(t, p, testSecret)
}

// dial opens a UDP socket to addr for raw datagrams.
func dial(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// recv returns the next datagram, or nil after timeout.
func recv(t *testing.T, c *net.UDPConn, timeout time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, radius.MaxPacketLength+1)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatalf("recv: %v", err)
	}
	return buf[:n]
}

func roundTrip(t *testing.T, c *net.UDPConn, b []byte) []byte {
	t.Helper()
	send(t, c, b)
	resp := recv(t, c, answerWait)
	if resp == nil {
		t.Fatalf("got no answer, want one")
	}
	return resp
}

func TestServerAnswers(t *testing.T) {
	for _, laddr := range loopbacks {
		t.Run(laddr, func(t *testing.T) {
			var calls atomic.Int64
			var seen atomic.Pointer[Request]
			c := loopbackClient(t, laddr)
			h := startServer(t, laddr, &Server{
				Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
					seen.Store(r)
					return countingHandler(&calls).ServeRADIUS(ctx, r)
				}),
				Clients: NewClients([]*Client{c}),
			})
			req, reqWire := newSignedRequest(t, "alice")

			resp, err := exchange(h.addr, req, answerWait)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if resp.Code != radius.CodeAccessAccept {
				t.Errorf("code: got %v, want %v", resp.Code, radius.CodeAccessAccept)
			}
			checkAnswer(t, wireOf(t, resp), reqWire, c.Secret)
			if got := string(resp.Get(typeReplyMessage)); got != "call 1" {
				t.Errorf("Reply-Message: got %q, want %q", got, "call 1")
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("handler calls: got %d, want 1", got)
			}
			r := seen.Load()
			if r == nil {
				t.Fatal("handler saw no request")
			}
			if r.Client != c {
				t.Errorf("Request.Client: got %s, want %s", clientName(r.Client), c.Name)
			}
			if want := c.Prefix.Addr(); r.Remote.Addr() != want || r.Remote.Port() == 0 {
				t.Errorf("Request.Remote: got %v, want %v and a port", r.Remote, want)
			}
			if got := string(r.Get(typeUserName)); got != "alice" {
				t.Errorf("Request User-Name: got %q, want %q", got, "alice")
			}
			if r.Authenticator != req.Authenticator || r.Identifier != req.Identifier {
				t.Errorf("Request header: got id %d auth %x, want id %d auth %x",
					r.Identifier, r.Authenticator, req.Identifier, req.Authenticator)
			}
			h.wantDropped(t, nil)
			if got := h.srv.Retransmissions(); got != 0 {
				t.Errorf("Retransmissions: got %d, want 0", got)
			}
		})
	}
}

func TestServerUnknownClient(t *testing.T) {
	for _, laddr := range loopbacks {
		t.Run(laddr, func(t *testing.T) {
			var calls atomic.Int64
			others := []*Client{
				{Name: "elsewhere-v4", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Secret: testSecret},
				{Name: "elsewhere-v6", Prefix: netip.MustParsePrefix("2001:db8::/32"), Secret: testSecret},
			}
			h := startServer(t, laddr, &Server{Handler: countingHandler(&calls), Clients: NewClients(others)})
			req, _ := newSignedRequest(t, "alice")

			wantNoAnswer(t, h.addr, req)
			h.waitDrop(t, "unknown_client")
			h.wantDropped(t, map[string]uint64{"unknown_client": 1})
			if got := calls.Load(); got != 0 {
				t.Errorf("handler calls: got %d, want 0", got)
			}
		})
	}
}

func TestServerMessageAuthenticator(t *testing.T) {
	tests := []struct {
		name     string
		require  bool
		ma       string // none, good, wrong, truncated, other-secret
		wantDrop string // "" when answered
	}{
		{"required, correct", true, "good", ""},
		{"required, absent", true, "none", "missing_message_authenticator"},
		{"required, wrong", true, "wrong", "bad_message_authenticator"},
		{"required, other secret", true, "other-secret", "bad_message_authenticator"},
		{"optional, correct", false, "good", ""},
		{"optional, absent", false, "none", ""},
		{"optional, wrong", false, "wrong", "bad_message_authenticator"},
		{"optional, truncated", false, "truncated", "bad_message_authenticator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			c := loopbackClient(t, "127.0.0.1:0")
			c.RequireMessageAuthenticator = tc.require
			h := startServer(t, "127.0.0.1:0", &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c})})

			req := radius.New(radius.CodeAccessRequest, c.Secret)
			req.Add(typeUserName, radius.Attribute("alice"))
			switch tc.ma {
			case "good":
				signRequest(t, req, c.Secret)
			case "wrong":
				signRequest(t, req, c.Secret)
				req.Attributes[len(req.Attributes)-1].Attribute[0] ^= 0x80
			case "other-secret":
				signRequest(t, req, []byte("not the secret"))
			case "truncated":
				req.Add(typeMessageAuthenticator, make(radius.Attribute, 15))
			}
			reqWire, err := req.Encode()
			if err != nil {
				t.Fatal(err)
			}

			if tc.wantDrop != "" {
				wantNoAnswer(t, h.addr, req)
				h.waitDrop(t, tc.wantDrop)
				h.wantDropped(t, map[string]uint64{tc.wantDrop: 1})
				if got := calls.Load(); got != 0 {
					t.Errorf("handler calls: got %d, want 0", got)
				}
				return
			}
			resp, err := exchange(h.addr, req, answerWait)
			if err != nil {
				t.Fatalf("exchange: got %v, want an answer", err)
			}
			checkAnswer(t, wireOf(t, resp), reqWire, c.Secret)
			h.wantDropped(t, nil)
			if got := calls.Load(); got != 1 {
				t.Errorf("handler calls: got %d, want 1", got)
			}
		})
	}
}

func TestServerProxyState(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			return &Response{Code: radius.CodeAccessReject, Attributes: radius.Attributes{
				avp(typeReplyMessage, "no"),
				avp(typeProxyState, "the handler's own"),
			}}
		}),
		Clients: NewClients([]*Client{c}),
	})
	req := radius.New(radius.CodeAccessRequest, c.Secret)
	req.Add(typeProxyState, radius.Attribute("\x00\x01first"))
	req.Add(typeUserName, radius.Attribute("alice"))
	req.Add(typeProxyState, radius.Attribute("second"))
	reqWire := signRequest(t, req, c.Secret)

	resp, err := exchange(h.addr, req, answerWait)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	checkAnswer(t, wireOf(t, resp), reqWire, c.Secret)
	want := []string{"\x00\x01first", "second"}
	if got := values(resp.Attributes, typeProxyState); !slices.Equal(got, want) {
		t.Errorf("Proxy-State: got %q, want %q", got, want)
	}
	n := len(resp.Attributes)
	if n < 2 || resp.Attributes[n-2].Type != typeProxyState || resp.Attributes[n-1].Type != typeProxyState {
		t.Errorf("attributes: got %s, want the Proxy-States last", attrString(resp.Attributes))
	}
}

func TestServerRetransmission(t *testing.T) {
	for _, laddr := range loopbacks {
		t.Run(laddr, func(t *testing.T) {
			const window = 30 * time.Second
			var calls atomic.Int64
			c := loopbackClient(t, laddr)
			h := startServer(t, laddr, &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c}),
				DuplicateWindow: window})
			conn := dial(t, h.addr)

			req := testRequest(7, avp(typeUserName, "alice"))
			b := signRequest(t, req, c.Secret)
			first := roundTrip(t, conn, b)
			checkAnswer(t, first, b, c.Secret)
			if got := replyOf(t, first); got != "call 1" {
				t.Errorf("first answer: got %q, want %q", got, "call 1")
			}

			again := roundTrip(t, conn, b)
			if !bytes.Equal(again, first) {
				t.Errorf("retransmission: got %x, want the first answer %x", again, first)
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("handler calls after a retransmission: got %d, want 1", got)
			}
			if got := h.srv.Retransmissions(); got != 1 {
				t.Errorf("Retransmissions: got %d, want 1", got)
			}

			// Same identifier, new authenticator: a new request.
			req2 := testRequest(7, avp(typeUserName, "alice"))
			req2.Authenticator[0] ^= 0xff
			b2 := signRequest(t, req2, c.Secret)
			second := roundTrip(t, conn, b2)
			checkAnswer(t, second, b2, c.Secret)
			if got := replyOf(t, second); got != "call 2" {
				t.Errorf("same identifier, new authenticator: got %q, want %q", got, "call 2")
			}

			// The same bytes from another source port: a new request.
			third := roundTrip(t, dial(t, h.addr), b)
			if got := replyOf(t, third); got != "call 3" {
				t.Errorf("same bytes, other port: got %q, want %q", got, "call 3")
			}

			// Still inside the window: answered from the cache.
			h.clock.Advance(window - time.Second)
			if got := roundTrip(t, conn, b); !bytes.Equal(got, first) {
				t.Errorf("inside the window: got %q, want the first answer", replyOf(t, got))
			}
			// Past the window: the handler runs again.
			h.clock.Advance(2 * time.Second)
			late := roundTrip(t, conn, b)
			checkAnswer(t, late, b, c.Secret)
			if got := replyOf(t, late); got != "call 4" {
				t.Errorf("after the window: got %q, want %q", got, "call 4")
			}
			if got := calls.Load(); got != 4 {
				t.Errorf("handler calls: got %d, want 4", got)
			}
			if got := h.srv.Retransmissions(); got != 2 {
				t.Errorf("Retransmissions: got %d, want 2", got)
			}
			h.wantDropped(t, nil)
		})
	}
}

func TestServerDuplicateInProgress(t *testing.T) {
	var calls atomic.Int64
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			calls.Add(1)
			entered <- struct{}{}
			<-release
			return &Response{Code: radius.CodeAccessAccept}
		}),
		Clients: NewClients([]*Client{c}),
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // runs before the server is stopped

	conn := dial(t, h.addr)
	req := testRequest(9, avp(typeUserName, "alice"))
	b := signRequest(t, req, c.Secret)
	send(t, conn, b)
	select {
	case <-entered:
	case <-time.After(answerWait):
		t.Fatal("handler not called")
	}
	send(t, conn, b) // while the first is still being decided
	h.waitDrop(t, "duplicate_in_progress")
	open()

	first := recv(t, conn, answerWait)
	if first == nil {
		t.Fatal("got no answer, want one")
	}
	checkAnswer(t, first, b, c.Secret)
	if extra := recv(t, conn, noAnswerWait); extra != nil {
		t.Errorf("got a second answer %x, want only one", extra)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("handler calls: got %d, want 1", got)
	}
	h.wantDropped(t, map[string]uint64{"duplicate_in_progress": 1})
	if got := roundTrip(t, conn, b); !bytes.Equal(got, first) {
		t.Errorf("retransmission after the answer: got %x, want %x", got, first)
	}
}

func TestServerNoAnswerIsForgotten(t *testing.T) {
	// A request the handler gives no answer is not cached: its
	// retransmission is decided afresh.
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			if calls.Add(1) == 1 {
				return nil
			}
			return &Response{Code: radius.CodeAccessAccept}
		}),
		Clients:       NewClients([]*Client{c}),
		MaxConcurrent: 1, // the second copy is handled after the first is done
	})
	conn := dial(t, h.addr)
	b := signRequest(t, testRequest(3, avp(typeUserName, "alice")), c.Secret)
	send(t, conn, b)
	resp := roundTrip(t, conn, b)
	checkAnswer(t, resp, b, c.Secret)
	if got := calls.Load(); got != 2 {
		t.Errorf("handler calls: got %d, want 2", got)
	}
	if got := h.srv.Retransmissions(); got != 0 {
		t.Errorf("Retransmissions: got %d, want 0", got)
	}
}

func TestServerPanic(t *testing.T) {
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			if string(r.Get(typeUserName)) == "boom" {
				panic("boom")
			}
			return countingHandler(&calls).ServeRADIUS(ctx, r)
		}),
		Clients: NewClients([]*Client{c}),
	})
	boom, _ := newSignedRequest(t, "boom")
	wantNoAnswer(t, h.addr, boom)
	h.waitDrop(t, "panic")

	req, reqWire := newSignedRequest(t, "alice")
	resp, err := exchange(h.addr, req, answerWait)
	if err != nil {
		t.Fatalf("request after the panic: got %v, want an answer", err)
	}
	checkAnswer(t, wireOf(t, resp), reqWire, c.Secret)
	h.wantDropped(t, map[string]uint64{"panic": 1})
}

func TestServerMaxConcurrent(t *testing.T) {
	const max, n = 2, 6
	var running, peak atomic.Int64
	entered := make(chan struct{}, n)
	release := make(chan struct{})
	abort := make(chan struct{})
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			cur := running.Add(1)
			for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
			}
			entered <- struct{}{}
			select {
			case <-release:
			case <-abort:
			}
			running.Add(-1)
			return &Response{Code: radius.CodeAccessAccept}
		}),
		Clients:       NewClients([]*Client{c}),
		MaxConcurrent: max,
	})
	t.Cleanup(func() { close(abort) }) // runs before the server is stopped

	reqs := make([]*radius.Packet, n)
	for i := range reqs {
		reqs[i], _ = newSignedRequest(t, fmt.Sprintf("user%d", i))
	}
	results := make(chan error, n)
	for _, req := range reqs {
		go func() {
			resp, err := exchange(h.addr, req, 4*answerWait)
			if err == nil && resp.Code != radius.CodeAccessAccept {
				err = fmt.Errorf("got %v, want Access-Accept", resp.Code)
			}
			results <- err
		}()
	}
	waitEntered := func() {
		t.Helper()
		select {
		case <-entered:
		case <-time.After(answerWait):
			t.Fatalf("no handler started; %d running", running.Load())
		}
	}
	releaseOne := func() {
		t.Helper()
		select {
		case release <- struct{}{}:
		case <-time.After(answerWait):
			t.Fatalf("no handler waiting to be released")
		}
	}
	for range max {
		waitEntered()
	}
	for range n - max {
		releaseOne()
		waitEntered()
	}
	for range max {
		releaseOne()
	}
	for range n {
		if err := <-results; err != nil {
			t.Errorf("exchange: %v", err)
		}
	}
	if got := peak.Load(); got != max {
		t.Errorf("most handlers running at once: got %d, want %d", got, max)
	}
}

func TestServerDrain(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
			entered <- struct{}{}
			<-release
			ctxErr <- ctx.Err()
			return &Response{Code: radius.CodeAccessAccept}
		}),
		Clients: NewClients([]*Client{c}),
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)

	req, reqWire := newSignedRequest(t, "alice")
	type result struct {
		resp *radius.Packet
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := exchange(h.addr, req, 4*answerWait)
		answered <- result{resp, err}
	}()
	select {
	case <-entered:
	case <-time.After(answerWait):
		t.Fatal("handler not called")
	}

	h.stop()
	select {
	case <-h.done:
		t.Fatalf("Serve returned (%v) with a request in flight", h.err)
	case <-time.After(noAnswerWait):
	}
	open()

	r := <-answered
	if r.err != nil {
		t.Fatalf("in-flight request: got %v, want an answer", r.err)
	}
	checkAnswer(t, wireOf(t, r.resp), reqWire, c.Secret)
	if err := <-ctxErr; err != nil {
		t.Errorf("handler's context: got %v, want not done", err)
	}
	select {
	case <-h.done:
		if h.err != nil {
			t.Errorf("Serve: got %v, want nil", h.err)
		}
	case <-time.After(answerWait):
		t.Fatal("Serve did not return after the drain")
	}
}

func TestServeCancelledContext(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv := &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients(nil)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("got %v, want nil", err)
		}
	case <-time.After(answerWait):
		t.Fatal("Serve did not return")
	}
}

func TestServeClosedConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	srv := &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients(nil)}
	if err := srv.Serve(context.Background(), pc); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got %v, want net.ErrClosed", err)
	}
}

// header is a request header with the given code and Length field,
// followed by rest.
func header(code radius.Code, length int, rest ...byte) []byte {
	b := make([]byte, 20, 20+len(rest))
	b[0], b[1] = byte(code), 1
	binary.BigEndian.PutUint16(b[2:4], uint16(length))
	return append(b, rest...)
}

// dropThenProbe sends bad from a configured client, waits for the drop,
// then checks that the next datagram the client gets is the answer to a
// good request: bad got no answer of its own. The server handles one
// packet at a time, so the drop is complete before the probe is handled.
func dropThenProbe(t *testing.T, bad []byte, cause string) {
	t.Helper()
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c}),
		MaxConcurrent: 1})
	conn := dial(t, h.addr)
	send(t, conn, bad)
	h.waitDrop(t, cause)

	probe := signRequest(t, testRequest(200, avp(typeUserName, "probe")), c.Secret)
	checkAnswer(t, roundTrip(t, conn, probe), probe, c.Secret)
	h.wantDropped(t, map[string]uint64{cause: 1})
	if got := calls.Load(); got != 1 {
		t.Errorf("handler calls: got %d, want 1 (the probe)", got)
	}
}

func TestServerMalformed(t *testing.T) {
	big := header(radius.CodeAccessRequest, 5000, make([]byte, 4980)...)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty datagram", []byte{}},
		{"one byte", []byte{1}},
		{"19 bytes", header(radius.CodeAccessRequest, 19)[:19]},
		{"length field 0", header(radius.CodeAccessRequest, 0)},
		{"length field 1", header(radius.CodeAccessRequest, 1)},
		{"length field 19", header(radius.CodeAccessRequest, 19)},
		{"length field beyond the datagram", header(radius.CodeAccessRequest, 100)},
		{"datagram beyond 4096 bytes", big},
		{"attribute length 0", header(radius.CodeAccessRequest, 22, 1, 0)},
		{"attribute length 1", header(radius.CodeAccessRequest, 22, 1, 1)},
		{"attribute beyond the packet", header(radius.CodeAccessRequest, 25, 1, 10, 'a', 'b', 'c')},
		{"attribute cut by the length field", header(radius.CodeAccessRequest, 24, 1, 6, 'a', 'b', 'c', 'd')},
		{"stray byte after the attributes", header(radius.CodeAccessRequest, 21, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { dropThenProbe(t, tc.raw, "malformed") })
	}
}

func TestServerUnsupportedCode(t *testing.T) {
	accounting := radius.New(radius.CodeAccountingRequest, testSecret)
	accounting.Add(typeUserName, radius.Attribute("alice"))
	acctWire, err := accounting.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		raw  []byte
	}{
		{"Accounting-Request on an authentication listener", acctWire},
		{"Access-Accept", header(radius.CodeAccessAccept, 20)},
		{"Access-Challenge", header(radius.CodeAccessChallenge, 20)},
		{"code 0", header(0, 20)},
		{"code 255", header(255, 20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { dropThenProbe(t, tc.raw, "unsupported_code") })
	}
}

func TestServerStatusServer(t *testing.T) {
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c})})
	conn := dial(t, h.addr)
	p := testRequest(9)
	p.Code = radius.CodeStatusServer
	b := signRequest(t, p, c.Secret)
	resp := roundTrip(t, conn, b)
	checkAnswer(t, resp, b, c.Secret)
	if radius.Code(resp[0]) != radius.CodeAccessAccept {
		t.Errorf("got code %d, want Access-Accept", resp[0])
	}
	if calls.Load() != 0 {
		t.Errorf("Status-Server reached the handler")
	}
	// Without Message-Authenticator it is dropped (RFC 5997 §3).
	p = testRequest(10)
	p.Code = radius.CodeStatusServer
	raw, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	send(t, conn, raw)
	h.waitDrop(t, "missing_message_authenticator")
}

func TestServerAccounting(t *testing.T) {
	var got []string
	var mu sync.Mutex
	c := loopbackClient(t, "127.0.0.1:0")
	h := startServer(t, "127.0.0.1:0", &Server{Clients: NewClients([]*Client{c}),
		Accounting: func(_ context.Context, r *Request) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(r.Get(typeUserName)))
		}})
	conn := dial(t, h.addr)
	p := radius.New(radius.CodeAccountingRequest, c.Secret)
	p.Identifier = 3
	p.Add(typeUserName, radius.Attribute("alice"))
	p.Add(40, radius.Attribute([]byte{0, 0, 0, 1})) // Acct-Status-Type Start
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	resp := roundTrip(t, conn, b)
	if radius.Code(resp[0]) != radius.CodeAccountingResponse || !radius.IsAuthenticResponse(resp, b, c.Secret) {
		t.Fatalf("got %x, want an authentic Accounting-Response", resp)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != "alice" {
		t.Errorf("accounting saw %v, want alice once", got)
	}
	mu.Unlock()
	// A wrong request authenticator (another secret) is dropped; an
	// Access-Request on an accounting-only listener too.
	bad := radius.New(radius.CodeAccountingRequest, []byte("wrong"))
	bad.Add(typeUserName, radius.Attribute("mallory"))
	wb, _ := bad.Encode()
	send(t, conn, wb)
	h.waitDrop(t, "bad_authenticator")
	send(t, conn, signRequest(t, testRequest(11, avp(typeUserName, "x")), c.Secret))
	h.waitDrop(t, "unsupported_code")
}

func TestServerLimitProxyState(t *testing.T) {
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	c.RequireMessageAuthenticator, c.LimitProxyState = false, true
	h := startServer(t, "127.0.0.1:0", &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c})})
	conn := dial(t, h.addr)
	plain, err := testRequest(12, avp(typeUserName, "alice")).Encode()
	if err != nil {
		t.Fatal(err)
	}
	checkAnswer(t, roundTrip(t, conn, plain), plain, c.Secret) // no Proxy-State: fine without MA
	proxied, err := testRequest(13, avp(typeUserName, "alice"), avp(typeProxyState, "p1")).Encode()
	if err != nil {
		t.Fatal(err)
	}
	send(t, conn, proxied)
	h.waitDrop(t, "proxy_state_without_message_authenticator")
	signed := signRequest(t, testRequest(14, avp(typeUserName, "alice"), avp(typeProxyState, "p1")), c.Secret)
	checkAnswer(t, roundTrip(t, conn, signed), signed, c.Secret)
}

func TestServerIgnoresPadding(t *testing.T) {
	// RFC 2865 §3: octets beyond the Length field are padding.
	var calls atomic.Int64
	c := loopbackClient(t, "127.0.0.1:0")
	c.RequireMessageAuthenticator = true
	h := startServer(t, "127.0.0.1:0", &Server{Handler: countingHandler(&calls), Clients: NewClients([]*Client{c})})
	conn := dial(t, h.addr)
	b := signRequest(t, testRequest(5, avp(typeUserName, "alice")), c.Secret)
	padded := append(slices.Clone(b), 0, 0, 0, 0, 0, 0, 0, 0)
	checkAnswer(t, roundTrip(t, conn, padded), b, c.Secret)
	h.wantDropped(t, nil)
}
