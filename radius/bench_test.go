package radius

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/policy"
)

// discardConn is a PacketConn that takes answers, counts them and sends
// them nowhere.
type discardConn struct {
	net.PacketConn
	n *int
}

func (c discardConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	*c.n++
	return len(b), nil
}

// BenchmarkHandleChallenge is the server's own part of a request, from the
// bytes read to the answer's bytes written: checks, the retransmission
// cache, the policy request made from the attributes and the answer made
// from a decision (a challenge with its State and text). The figure to
// watch is allocations (-benchmem).
func BenchmarkHandleChallenge(b *testing.B) {
	c := &Client{Name: "gw", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: testSecret, Tenant: "acme",
		ClientIP: mustIPSource(b, "Calling-Station-Id")}
	d := &fixedDecider{res: policy.Result{Decision: policy.Challenge, Message: "Enter the code from your app", State: "0123456789abcdef0123456789abcdef"}}
	s := &Server{Handler: Decide(d), Clients: NewClients([]*Client{c}), MaxDuplicates: 256}
	s.init()
	// Distinct requests, more than the cache keeps, so that none is
	// answered from it.
	reqs := make([][]byte, 1024)
	for i := range reqs {
		p := radius.New(radius.CodeAccessRequest, c.Secret)
		p.Identifier = byte(i)
		p.Add(typeUserName, radius.Attribute("alice@acme.example"))
		p.Attributes = append(p.Attributes, userPassword(b, p, "correct horse", c.Secret))
		p.Add(typeCallingStationID, radius.Attribute("203.0.113.9"))
		reqs[i] = signRequest(b, p, c.Secret)
	}
	answers := 0
	to := peer{conn: discardConn{n: &answers}, addr: netip.MustParseAddrPort("127.0.0.1:40000")}
	var parked sync.WaitGroup
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.handle(ctx, to, reqs[i%len(reqs)], &parked)
		i++
	}
	if n := s.Dropped(); len(n) > 0 {
		b.Fatalf("dropped: %v", n)
	}
	if d.n != i || answers != i || s.Retransmissions() != 0 {
		b.Fatalf("%d requests: %d decided, %d answered, %d answered from the cache; want each decided and answered once", i, d.n, answers, s.Retransmissions())
	}
}

// fixedDecider decides every request the same way, and counts them.
type fixedDecider struct {
	res policy.Result
	n   int
}

func (d *fixedDecider) Decide(context.Context, policy.Request) policy.Result {
	d.n++
	return d.res
}
