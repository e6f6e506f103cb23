package radius

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
)

// short is the deadline the attack tests set: long enough for a TLS handshake
// under -race on a loaded machine, short enough to wait for.
const short = time.Second

// dialRaw opens a plain TCP connection to the RadSec listener.
func (h *tlsHarness) dialRaw(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answered sends a request on c and checks its answer.
func answered(t *testing.T, c net.Conn, id byte) {
	t.Helper()
	req := tlsRequest(t, id, "alice")
	write(t, c, req)
	checkAnswer(t, readPacket(t, c), req, []byte(TLSSecret))
}

// TestTLSSilentClient: a connection that never starts its handshake is
// closed at the handshake deadline, and does not stop others meanwhile.
func TestTLSSilentClient(t *testing.T) {
	h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()}),
		TLSHandshakeTimeout: short, MaxTLSConns: 2})
	silent := h.dialRaw(t)
	answered(t, h.connect(t), 1)
	wantClosed(t, silent)
	h.waitDrop(t, "tls_handshake_failed")
}

// TestTLSStalledPacket: a client that sends part of a packet and stops is
// closed once the rest is overdue, not held open.
func TestTLSStalledPacket(t *testing.T) {
	for _, n := range []int{2, 4, 11} {
		t.Run(strings.Repeat("x", n), func(t *testing.T) {
			h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()}),
				TLSHandshakeTimeout: short, TLSIdleTimeout: short})
			c := h.connect(t)
			answered(t, c, 1) // the client is known; then it stalls
			write(t, c, tlsRequest(t, 2, "alice")[:n])
			wantClosed(t, c)
			h.waitDrop(t, "tls_stalled")
		})
	}
}

// TestTLSBadLength: a Length the stream cannot be framed by closes the
// connection, whatever follows.
func TestTLSBadLength(t *testing.T) {
	h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()})})
	for _, length := range []int{0, 5, 19, 4097, 65535} {
		c := h.connect(t)
		answered(t, c, 1)
		bad := header(radius.CodeAccessRequest, length)
		write(t, c, append(bad, make([]byte, 100)...))
		wantClosed(t, c)
		h.waitDrop(t, "tls_bad_length")
	}
}

// TestTLSConnectionCaps: connections past the cap in all are closed at
// once, as are handshakes past the cap per address and a client's
// connections past its own cap; closed ones make room again.
func TestTLSConnectionCaps(t *testing.T) {
	t.Run("per client", func(t *testing.T) {
		h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()}),
			MaxTLSConnsPerClient: 2})
		first, second := h.connect(t), h.connect(t)
		answered(t, first, 1)
		answered(t, second, 1)
		third := h.connect(t)
		write(t, third, tlsRequest(t, 1, "alice"))
		wantClosed(t, third)
		h.waitDrop(t, "tls_too_many_connections")
		first.Close()
		answered(t, second, 2)
		fourth := h.connect(t)
		for range 100 { // until the server has seen first go
			req := tlsRequest(t, 1, "alice")
			fourth.Write(req)
			if b, err := readOrClosed(fourth); err == nil {
				checkAnswer(t, b, req, []byte(TLSSecret))
				return
			}
			fourth = h.connect(t)
		}
		t.Fatal("no room for a new connection after one closed")
	})
	t.Run("handshakes per address", func(t *testing.T) {
		h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()}),
			MaxTLSConnsPerClient: 2, TLSHandshakeTimeout: time.Minute})
		h.dialRaw(t)
		h.dialRaw(t)
		wantClosed(t, h.dialRaw(t))
		h.waitDrop(t, "tls_too_many_connections")
	})
	t.Run("in all", func(t *testing.T) {
		h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()}),
			MaxTLSConns: 3, TLSHandshakeTimeout: time.Minute})
		good := h.connect(t)
		answered(t, good, 1)
		h.dialRaw(t)
		h.dialRaw(t)
		wantClosed(t, h.dialRaw(t))
		h.waitDrop(t, "tls_too_many_connections")
		if got := h.srv.TLSConnections(); got != 3 { // accepted in order: the two before are counted
			t.Errorf("TLSConnections: got %d, want 3", got)
		}
		answered(t, good, 2) // the one in place still works
	})
}

// readOrClosed reads one packet, or reports that the connection closed.
func readOrClosed(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(answerWait))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	b := make([]byte, int(hdr[2])<<8|int(hdr[3]))
	copy(b, hdr)
	_, err := io.ReadFull(c, b[4:])
	return b, err
}

// TestTLSIdle: a connection with nothing to say is closed after the idle
// timeout, but not while an answer is owed to it.
func TestTLSIdle(t *testing.T) {
	ph := &parkingHandler{parked: make(chan struct{}, 1), release: make(chan *Response, 1)}
	h := startTLS(t, &Server{Handler: ph, Clients: NewClients([]*Client{tlsClient()}), TLSIdleTimeout: short})
	wantClosed(t, h.connect(t))

	c := h.connect(t)
	held := tlsRequest(t, 1, "held")
	write(t, c, held)
	<-ph.parked
	c.SetReadDeadline(time.Now().Add(5 * short))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("with an answer owed, after 5 idle timeouts: got %v, want the connection open", err)
	}
	ph.release <- &Response{Code: radius.CodeAccessAccept}
	checkAnswer(t, readPacket(t, c), held, []byte(TLSSecret))
	wantClosed(t, c)
}

// TestTLSDrain: on shutdown new connections are refused, the request in
// flight is answered on its connection, which is then closed, and only
// then does ServeTLS return.
func TestTLSDrain(t *testing.T) {
	ph := &parkingHandler{parked: make(chan struct{}, 1), release: make(chan *Response, 1)}
	h := startTLS(t, &Server{Handler: ph, Clients: NewClients([]*Client{tlsClient()})})
	c := h.connect(t)
	held := tlsRequest(t, 1, "held")
	write(t, c, held)
	<-ph.parked
	h.stop()
	select {
	case err := <-h.done:
		t.Fatalf("ServeTLS returned (%v) with a request in flight", err)
	case <-time.After(noAnswerWait):
	}
	if _, err := net.Dial("tcp", h.addr); err == nil {
		t.Errorf("a new connection was accepted after shutdown began")
	}
	ph.release <- &Response{Code: radius.CodeAccessAccept}
	checkAnswer(t, readPacket(t, c), held, []byte(TLSSecret))
	wantClosed(t, c)
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup's check
	case <-time.After(answerWait):
		t.Fatal("ServeTLS did not return after the drain")
	}
}

// TestTLSReloadRemovesClient: a reload without the client ends its
// connection at its next request.
func TestTLSReloadRemovesClient(t *testing.T) {
	h := startTLS(t, &Server{Handler: countingHandler(new(atomic.Int64)), Clients: NewClients([]*Client{tlsClient()})})
	c := h.connect(t)
	answered(t, c, 1)
	h.srv.SetClients(NewClients([]*Client{loopbackClient(t, "127.0.0.1:0")})) // a UDP client at the same address
	write(t, c, tlsRequest(t, 2, "alice"))
	wantClosed(t, c)
	h.waitDrop(t, "unknown_client")
}

// TestTLSClientNotReading: a client that sends requests but takes no
// answers loses its connection at the write deadline, and the one worker
// there is keeps answering others meanwhile.
func TestTLSClientNotReading(t *testing.T) {
	big := strings.Repeat("x", 250)
	h := startTLS(t, &Server{Handler: HandlerFunc(func(ctx context.Context, r *Request) *Response {
		resp := &Response{Code: radius.CodeAccessReject}
		for range 15 {
			resp.Attributes.Add(typeReplyMessage, radius.Attribute(big))
		}
		return resp
	}), Clients: NewClients([]*Client{tlsClient()}), MaxConcurrent: 1, TLSWriteTimeout: short})
	tcp, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp.(*net.TCPConn).SetReadBuffer(4096)
	cert := h.ca.issue(t, "x", "gw.example.com")
	stuck := tls.Client(tcp, &tls.Config{RootCAs: h.ca.pool, ServerName: "otpgate.example.com", Certificates: []tls.Certificate{cert}})
	t.Cleanup(func() { stuck.Close() })
	sent := make(chan error, 1)
	go func() {
		req := tlsRequest(t, 1, "alice")
		for i := range 4000 {
			req[1], req[4] = byte(i), byte(i>>8) // each a new request
			if _, err := stuck.Write(req); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	h.waitDrop(t, "tls_write_failed")
	answered(t, h.connect(t), 1)
	select {
	case <-sent:
	case <-time.After(answerWait):
		t.Fatal("the stuck client's writes still go through")
	}
}

// TestTLSBadLengthClosesAtOnce: a connection that breaks its framing is
// closed at once, even with a request of its own still held.
func TestTLSBadLengthClosesAtOnce(t *testing.T) {
	ph := &parkingHandler{parked: make(chan struct{}, 1), release: make(chan *Response, 1)}
	h := startTLS(t, &Server{Handler: ph, Clients: NewClients([]*Client{tlsClient()})})
	t.Cleanup(func() { ph.release <- nil })
	c := h.connect(t)
	write(t, c, tlsRequest(t, 1, "held"))
	<-ph.parked
	write(t, c, header(radius.CodeAccessRequest, 65535))
	wantClosed(t, c)
	h.waitDrop(t, "tls_bad_length")
}
