package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

const msgUnavailable = "Login is unavailable at the moment. Please try again later."

// hangingProvider is an SMS API that takes each request and answers none
// of them until released, like a provider that has stopped responding.
type hangingProvider struct {
	srv     *httptest.Server
	arrived chan string // the number of each message, as it arrives
	release chan struct{}
	once    sync.Once
}

func newHangingProvider(t *testing.T) *hangingProvider {
	h := &hangingProvider{arrived: make(chan string, 1000), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.arrived <- r.FormValue("to")
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// open lets the messages in flight through.
func (h *hangingProvider) open() { h.once.Do(func() { close(h.release) }) }

// fleet is many requests sent at once, each from a socket of its own, and
// every answer they get.
type fleet struct {
	addr    string
	sent    [][]byte
	conns   []*net.UDPConn
	answers chan fleetAnswer
}

type fleetAnswer struct {
	i int // the request's index in sent
	p *radius.Packet
}

func newFleet(t *testing.T, addr string) *fleet {
	return &fleet{addr: addr, answers: make(chan fleetAnswer, 1000)}
}

// send sends raw from the loopback address from and returns its index.
func (f *fleet) send(t *testing.T, from string, raw []byte) int {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	i := len(f.sent)
	f.sent, f.conns = append(f.sent, raw), append(f.conns, conn)
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return // closed at the end of the test
			}
			if !radius.IsAuthenticResponse(buf[:n], raw, []byte("testing123")) {
				continue
			}
			p, err := radius.Parse(bytes.Clone(buf[:n]), []byte("testing123"))
			if err == nil {
				f.answers <- fleetAnswer{i, p}
			}
		}
	}()
	return i
}

// resend sends request i again from its socket, as a gateway retransmits.
func (f *fleet) resend(t *testing.T, i int) {
	t.Helper()
	if _, err := f.conns[i].Write(f.sent[i]); err != nil {
		t.Fatal(err)
	}
}

// collect waits for n more answers.
func (f *fleet) collect(t *testing.T, n int, what string) []fleetAnswer {
	t.Helper()
	var got []fleetAnswer
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case a := <-f.answers:
			got = append(got, a)
		case <-deadline:
			t.Fatalf("%s: got %d answers, want %d", what, len(got), n)
		}
	}
	return got
}

// reasons counts answers by code and Reply-Message.
func reasons(as []fleetAnswer) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a.p.Code.String()+" "+replyMessage(a.p)]++
	}
	return out
}

// waitMetric waits until /metrics has a line that starts with want.
func (s *server) waitMetric(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var body string
	for time.Now().Before(deadline) {
		_, body = httpGet(t, "http://"+s.metrics+"/metrics")
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, want) {
				return
			}
		}
		<-tick.C
	}
	t.Fatalf("/metrics has no %q within 20s:\n%s", want, grepLines(body, "otpgate_"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestNoStarvation is issue 12.3 as the attacker measured it: RD Gateway
// logins held for approval up to every cap, an SMS provider that hangs
// taken up to its limit of messages in flight, and logins queued behind
// it up to the share of workers that may wait on I/O. A login from the
// office network through another gateway must still be answered within
// 100 ms; beyond each cap a login is rejected at once, never left without
// an answer; and the held logins are answered in the end, once each, with
// their Proxy-State.
func TestNoStarvation(t *testing.T) {
	sms := newHangingProvider(t)
	config := fmt.Sprintf(`
radius: {listen: ["127.0.0.1:0"], max_concurrent: 16, max_concurrent_io: 12,
         max_held: 20, max_held_per_client: 15, max_held_per_user: 5}
store: {path: "{{dir}}/otpgate.db"}
web: {listen: "127.0.0.1:0", public_url: "https://otp.example.com"}
clients:
  - {name: rdgw, address: 127.0.0.1/32, secret: testing123, tenant: acme, profile: rdgateway}
  - {name: rdgw2, address: 127.0.0.4/32, secret: testing123, tenant: acme, profile: rdgateway}
  - {name: vpn, address: 127.0.0.2/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
  - {name: office, address: 127.0.0.3/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [sms, email], country_code: "31"}
delivery:
  allow_console: true
  providers:
    - {name: slow, type: http, timeout: 30s, max_in_flight: 4,
       http: {url: "%s/send", params: ["to={{.To}}", "text={{.Text}}"]}}
  sms: [slow]
  email: [console]
`, sms.srv.URL)
	s := startServer(t, config)
	t.Cleanup(sms.open) // runs before the server is stopped, so the drain does not wait 30s
	s.cli(t, "user", "add", "olga", "--tenant", "acme", "--phone", "0612340000")
	for i := range 6 {
		s.cli(t, "user", "add", fmt.Sprintf("rd%d", i), "--tenant", "acme", "--email", fmt.Sprintf("rd%d@example.com", i))
	}
	phones := map[string]string{} // E.164 number -> user
	for i := range 16 {
		name, number := fmt.Sprintf("sms%d", i), fmt.Sprintf("+316123401%02d", i)
		s.cli(t, "user", "add", name, "--tenant", "acme", "--phone", number)
		phones[number] = name
	}
	addr := s.addrs[0]

	// 1. Held logins, ten each of users rd0..rd5 from one machine (ten
	// logins of a user share one link). Through rdgw, rd0..rd3 are held
	// up to five per user and fifteen per gateway; then through rdgw2,
	// rd4 and rd5 up to twenty in all. The other forty are rejected at
	// once.
	held := newFleet(t, addr)
	for i := range 4 {
		for range 10 {
			held.send(t, "127.0.0.1", rdgRequest(t, fmt.Sprintf("rd%d", i), "PC-1", ""))
		}
	}
	rejected := held.collect(t, 25, "logins beyond radius.max_held_per_user and _per_client")
	s.waitMetric(t, "otpgate_held_logins 15")
	for i := 4; i < 6; i++ {
		for range 10 {
			held.send(t, "127.0.0.4", rdgRequest(t, fmt.Sprintf("rd%d", i), "PC-1", ""))
		}
	}
	rejected = append(rejected, held.collect(t, 15, "logins beyond radius.max_held")...)
	s.waitMetric(t, "otpgate_held_logins 20")
	if got := reasons(rejected); got["Access-Reject "+msgUnavailable] != 40 {
		t.Fatalf("logins beyond the hold caps: got %v, want 40 rejects", got)
	}
	s.waitMetric(t, `otpgate_requests_total{client="rdgw",decision="reject",reason="hold_limit"} 25`)
	s.waitMetric(t, `otpgate_requests_total{client="rdgw2",decision="reject",reason="hold_limit"} 15`)
	isHeld := map[int]bool{}
	for i := range held.sent {
		isHeld[i] = true
	}
	for _, a := range rejected {
		delete(isHeld, a.i)
	}
	for i := range isHeld {
		held.resend(t, i) // a gateway's retransmission during the hold
		break
	}
	s.waitMetric(t, `otpgate_dropped_packets_total{cause="duplicate_in_progress"} 1`)

	// 2. SMS logins of sixteen users through vpn: four messages hang at
	// the provider, its limit; the others fail over (there is nothing to
	// fail over to) or find the I/O share taken, and are rejected at once.
	logins := newFleet(t, addr)
	for i := range 16 {
		logins.send(t, "127.0.0.2", encodeRequest(t, request{user: fmt.Sprintf("sms%d", i), callingStation: "203.0.113.5"}))
	}
	hanging := map[string]bool{}
	for len(hanging) < 4 {
		select {
		case to := <-sms.arrived:
			hanging[phones[to]] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("the provider got %d messages, want 4", len(hanging))
		}
	}
	logins.collect(t, 12, "SMS logins beyond the provider's limit")

	// 3. Ten more logins each of the four users whose message hangs: they
	// would wait for it. One each waits (an I/O slot each: eight of the
	// twelve taken, with the four sending); the other 36 are rejected at
	// once as busy, so that one user cannot fill the I/O share. Four
	// other users' challenges, sent by email, still get the four slots
	// left.
	for u := range hanging {
		for range 10 {
			logins.send(t, "127.0.0.2", encodeRequest(t, request{user: u, callingStation: "203.0.113.5"}))
		}
	}
	busy := logins.collect(t, 36, "logins waiting behind a hanging provider")
	if got := reasons(busy); got["Access-Reject "+msgUnavailable] != 36 {
		t.Errorf("logins beyond one waiting per user: got %v, want 36 rejects", got)
	}
	s.waitMetric(t, `otpgate_requests_total{client="vpn",decision="reject",reason="busy"}`)
	others := newFleet(t, addr)
	for i := range 4 {
		others.send(t, "127.0.0.2", encodeRequest(t, request{user: fmt.Sprintf("rd%d", i), callingStation: "203.0.113.6"}))
	}
	for _, a := range others.collect(t, 4, "other users' challenges") {
		if a.p.Code != radius.CodeAccessChallenge {
			t.Errorf("rd%d's challenge by email while the share has room: got %v %q, want Access-Challenge", a.i, a.p.Code, replyMessage(a.p))
		}
	}
	select {
	case to := <-sms.arrived:
		t.Fatalf("a fifth message reached the provider (to %s), past its max_in_flight of 4", to)
	default:
	}

	// 4. The office, through another gateway: answered, and quickly.
	for i := range 5 {
		start := time.Now()
		p, _, err := exchange(t, addr, request{user: "olga", callingStation: "192.0.2.10", from: "127.0.0.3"})
		took := time.Since(start)
		if err != nil {
			t.Fatalf("office login %d while the holds and the provider are full: %v", i, err)
		}
		expect(t, p, radius.CodeAccessAccept, "HQ IP Allowed!")
		if took > 100*time.Millisecond {
			t.Errorf("office login %d took %v, want under 100ms", i, took)
		}
		t.Logf("office login %d answered in %v", i, took)
	}

	// 5. The provider answers and the server stops: every held login is
	// answered, once (its retransmission included), with its Proxy-State.
	sms.open()
	s.stop(t)
	answers := held.collect(t, 20, "held logins at shutdown")
	seen := map[int]bool{}
	for _, a := range answers {
		if !isHeld[a.i] || seen[a.i] {
			t.Errorf("request %d got a second answer", a.i)
		}
		seen[a.i] = true
		if a.p.Code != radius.CodeAccessReject {
			t.Errorf("a held login at shutdown: got %v, want Access-Reject", a.p.Code)
		}
		if ps := rfc2865.ProxyState_Get(a.p); string(ps) != "nps-1" {
			t.Errorf("a held login's answer: got Proxy-State %q, want nps-1", ps)
		}
	}
	select {
	case a := <-held.answers:
		t.Errorf("request %d got another answer (%v)", a.i, a.p.Code)
	default:
	}
}
