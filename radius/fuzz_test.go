package radius

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/policy"
)

// capture is a PacketConn that keeps what is written to it.
type capture struct {
	net.PacketConn
	mu  sync.Mutex
	out [][]byte
}

func (c *capture) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, append([]byte(nil), b...))
	return len(b), nil
}

// echoDecider turns whatever arrives into a challenge with a long message
// and a State, to run the whole answer path.
type echoDecider struct{}

func (echoDecider) Decide(_ context.Context, r policy.Request) policy.Result {
	return policy.Result{Decision: policy.Challenge, State: r.State + "x", Message: r.User + r.Password + r.Machine + r.IP.String()}
}

// FuzzHandle feeds request handling arbitrary attributes in a packet with
// a valid Message-Authenticator, so that the fuzzer gets past the checks
// into parsing, the client-IP and machine-name readers and the answer.
// Nothing may panic, and every answer must be authentic, over UDP and over
// RadSec.
func FuzzHandle(f *testing.F) {
	f.Add(byte(radius.CodeAccessRequest), []byte{1, 7, 'a', 'l', 'i', 'c', 'e'})
	f.Add(byte(radius.CodeAccessRequest), []byte{31, 14, '1', '9', '2', '.', '0', '.', '2', '.', '7', ':', '8', '0'})
	f.Add(byte(radius.CodeAccessRequest), []byte{26, 12, 0, 0, 1, 55, 50, 6, 'P', 'C', '-', '1'})
	f.Add(byte(radius.CodeAccessRequest), []byte{2, 18, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(byte(radius.CodeStatusServer), []byte{})
	f.Add(byte(radius.CodeAccountingRequest), []byte{40, 6, 0, 0, 0, 1})
	src, err := ParseIPSources([]string{"Calling-Station-Id", "Tunnel-Client-Endpoint", "Framed-IP-Address", "Framed-IPv6-Address", "25461:7"})
	if err != nil {
		f.Fatal(err)
	}
	client := &Client{Name: "gw", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: testSecret,
		RequireMessageAuthenticator: true, ClientIP: src, StripDomain: true, StripRealm: true, LimitProxyState: true}
	overTLS := &Client{Name: "gw-tls", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: testSecret, TLSName: "gw.example.com",
		ClientIP: src, StripDomain: true, StripRealm: true}
	f.Fuzz(func(t *testing.T, code byte, attrs []byte) {
		if len(attrs) > 4000 {
			return
		}
		raw := make([]byte, 20, 20+len(attrs)+18)
		raw[0], raw[1] = code, 42
		for i := range 16 {
			raw[4+i] = byte(i * 13)
		}
		raw = append(raw, attrs...)
		raw = append(raw, byte(typeMessageAuthenticator), 18)
		raw = append(raw, make([]byte, 16)...)
		binary.BigEndian.PutUint16(raw[2:4], uint16(len(raw)))
		copy(raw[len(raw)-16:], hmacMD5(raw, len(raw)-16, testSecret))

		s := &Server{Handler: Decide(echoDecider{}), Accounting: func(context.Context, *Request) {}, Clients: NewClients([]*Client{client, overTLS})}
		s.init()
		conn := &capture{}
		var parked sync.WaitGroup
		parked.Add(1)
		s.handle(context.Background(), peer{conn: conn, addr: netip.MustParseAddrPort("127.0.0.1:5000")}, raw, &parked)
		parked.Done()
		parked.Wait()
		if n := s.drops.snapshot()["panic"]; n != 0 {
			t.Fatalf("the handler panicked on %x", raw)
		}
		for _, resp := range conn.out {
			if !radius.IsAuthenticResponse(resp, raw, testSecret) {
				t.Fatalf("answer %x to %x is not authentic", resp, raw)
			}
		}

		// The same over RadSec, where Message-Authenticator is not required.
		tc := &tlsConn{names: []string{"gw.example.com"}, out: make(chan []byte, 4), failed: func() {}}
		s.handle(context.Background(), peer{addr: netip.MustParseAddrPort("127.0.0.1:5000"), tls: tc}, raw, tc)
		tc.wg.Wait()
		if n := s.drops.snapshot()["panic"]; n != 0 {
			t.Fatalf("the handler panicked over TLS on %x", raw)
		}
		close(tc.out)
		for resp := range tc.out {
			if !radius.IsAuthenticResponse(resp, raw, testSecret) {
				t.Fatalf("answer over TLS %x to %x is not authentic", resp, raw)
			}
		}
	})
}

// FuzzParseEndpoint: any text gives an address or the zero Addr, never a
// panic, and an address it returns prints back to one it parses again.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "203.0.113.9:51234", "[2001:db8::1]:443", "2001:db8::1", "fe80::1%eth0", "00:11:22:33:44:55", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := ParseEndpoint(s)
		if !a.IsValid() {
			return
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseEndpoint(%q) = %v, want no zone and no mapped form", s, a)
		}
		if b := ParseEndpoint(a.String()); b != a {
			t.Fatalf("ParseEndpoint(%q) = %v, but that parses as %v", s, a, b)
		}
	})
}

// FuzzAttributes: an upstream server's answer, taken apart into the
// attributes to pass on, never panics, and each attribute passed on
// encodes back into no more than an attribute holds.
func FuzzAttributes(f *testing.F) {
	f.Add([]byte{25, 7, 'n', 'p', 's', '-', '1'})
	f.Add([]byte{26, 16, 0, 0, 0x30, 0x44, 1, 6, 'v', 'p', 'n', '1', 3, 4, 'v', 'd'})
	f.Add([]byte{26, 8, 0, 0, 0x30, 0x44, 1, 9})
	f.Fuzz(func(t *testing.T, attrs []byte) {
		raw := append(header(radius.CodeAccessAccept, 20+len(attrs)), attrs...)
		p, err := radius.Parse(raw, testSecret)
		if err != nil {
			return
		}
		for _, a := range attributes(p) {
			if avp := avpOf(a); len(avp.Attribute) > 253 {
				t.Fatalf("%v: %d bytes encoded", a.Key, len(avp.Attribute))
			}
		}
	})
}
