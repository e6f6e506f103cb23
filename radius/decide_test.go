package radius

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/policy"
)

// recordingDecider records every policy.Request and answers with res.
type recordingDecider struct {
	res policy.Result

	mu   sync.Mutex
	reqs []policy.Request
}

func (d *recordingDecider) Decide(_ context.Context, req policy.Request) policy.Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqs = append(d.reqs, req)
	return d.res
}

func (d *recordingDecider) requests() []policy.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]policy.Request(nil), d.reqs...)
}

func mustIPSource(t testing.TB, name string) IPSource {
	t.Helper()
	src, err := ParseIPSource(name)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func userPassword(t testing.TB, p *radius.Packet, plain string, secret []byte) *radius.AVP {
	t.Helper()
	a, err := radius.NewUserPassword([]byte(plain), secret, p.Authenticator[:])
	if err != nil {
		t.Fatal(err)
	}
	return &radius.AVP{Type: typeUserPassword, Attribute: a}
}

func TestDecideRequest(t *testing.T) {
	remote := netip.MustParseAddrPort("192.0.2.10:40000")
	tests := []struct {
		name   string
		client *Client
		packet func(t *testing.T, c *Client) *radius.Packet
		want   policy.Request
	}{
		{
			name: "domain stripped, Calling-Station-Id, State",
			client: &Client{Name: "rdgw", Tenant: "acme", FirstFactor: "gateway", Secret: testSecret,
				StripDomain: true, ClientIP: mustIPSource(t, "Calling-Station-Id")},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				p := testRequest(1, avp(typeUserName, `ACME\alice`), avp(typeState, "st-42"),
					avp(typeCallingStationID, "203.0.113.9:5000"))
				p.Attributes = append(p.Attributes, userPassword(t, p, "123456", c.Secret))
				return p
			},
			want: policy.Request{Client: "rdgw", Tenant: "acme", FirstFactor: "gateway", User: "alice",
				Password: "123456", State: "st-42", IP: netip.MustParseAddr("203.0.113.9")},
		},
		{
			name: "realm stripped, Framed-IP-Address, long password",
			client: &Client{Name: "vpn", Tenant: "beta", FirstFactor: "local", Secret: []byte("another secret"),
				StripRealm: true, ClientIP: mustIPSource(t, "Framed-IP-Address")},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				p := testRequest(2, avp(typeUserName, "bob@beta.example"),
					avp(typeFramedIPAddress, "\xc6\x33\x64\x07"))
				p.Attributes = append(p.Attributes, userPassword(t, p, strings.Repeat("pässwörd-", 5), c.Secret))
				return p
			},
			want: policy.Request{Client: "vpn", Tenant: "beta", FirstFactor: "local", User: "bob",
				Password: strings.Repeat("pässwörd-", 5), IP: netip.MustParseAddr("198.51.100.7")},
		},
		{
			name: "no rules: name kept as sent",
			client: &Client{Name: "plain", Secret: testSecret,
				ClientIP: mustIPSource(t, "Tunnel-Client-Endpoint")},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				p := testRequest(3, avp(typeUserName, `ACME\carol@acme.example`),
					avp(typeTunnelClientEndpoint, "\x012001:db8::9"))
				p.Attributes = append(p.Attributes, userPassword(t, p, "pw", c.Secret))
				return p
			},
			want: policy.Request{Client: "plain", User: `ACME\carol@acme.example`, Password: "pw",
				IP: netip.MustParseAddr("2001:db8::9")},
		},
		{
			name:   "no password (authorization only, as RD Gateway sends)",
			client: &Client{Name: "rdgw", Tenant: "acme", FirstFactor: "gateway", Secret: testSecret, StripDomain: true},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				return testRequest(4, avp(typeUserName, `ACME\dave`))
			},
			want: policy.Request{Client: "rdgw", Tenant: "acme", FirstFactor: "gateway", User: "dave"},
		},
		{
			name:   "no IP source configured: Calling-Station-Id ignored",
			client: &Client{Name: "gw", Secret: testSecret},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				return testRequest(5, avp(typeUserName, "erin"), avp(typeCallingStationID, "203.0.113.9"))
			},
			want: policy.Request{Client: "gw", User: "erin"},
		},
		{
			name:   "IP source configured, attribute absent",
			client: &Client{Name: "gw", Secret: testSecret, ClientIP: mustIPSource(t, "Calling-Station-Id")},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				return testRequest(6, avp(typeUserName, "frank"), avp(typeFramedIPAddress, "\xc6\x33\x64\x07"))
			},
			want: policy.Request{Client: "gw", User: "frank"},
		},
		{
			name:   "RFC 2865 §7.1 known answer",
			client: &Client{Name: "nas", Secret: []byte("xyzzy5461")},
			packet: func(t *testing.T, c *Client) *radius.Packet {
				raw := mustHex(t, "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a0aee0406c0a80110050600000003")
				p, err := radius.Parse(raw, c.Secret)
				if err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: policy.Request{Client: "nas", User: "nemo", Password: "arctangent"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDecider{res: policy.Result{Decision: policy.Accept}}
			r := &Request{Client: tc.client, Remote: remote, Packet: tc.packet(t, tc.client)}
			resp := Decide(d).ServeRADIUS(context.Background(), r)
			if resp == nil || resp.Code != radius.CodeAccessAccept {
				t.Fatalf("response: got %+v, want Access-Accept", resp)
			}
			got := d.requests()
			if len(got) != 1 {
				t.Fatalf("Decide calls: got %d, want 1", len(got))
			}
			if !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("policy.Request:\ngot  %+v\nwant %+v", got[0], tc.want)
			}
		})
	}
}

func TestDecideBadPassword(t *testing.T) {
	for _, n := range []int{1, 5, 15, 17, 144} {
		t.Run(strings.Repeat("x", n), func(t *testing.T) {
			d := &recordingDecider{res: policy.Result{Decision: policy.Accept}}
			p := testRequest(1, avp(typeUserName, "alice"),
				&radius.AVP{Type: typeUserPassword, Attribute: make([]byte, n)})
			resp := Decide(d).ServeRADIUS(context.Background(),
				&Request{Client: &Client{Name: "gw", Secret: testSecret}, Packet: p})
			if resp == nil || resp.Code != radius.CodeAccessReject {
				t.Errorf("response: got %+v, want Access-Reject", resp)
			}
			if got := len(d.requests()); got != 0 {
				t.Errorf("Decide calls: got %d, want 0", got)
			}
		})
	}
}

func TestDecideResult(t *testing.T) {
	tests := []struct {
		name      string
		res       policy.Result
		wantCode  radius.Code
		wantReply []string
		wantState []string
	}{
		{"accept", policy.Result{Decision: policy.Accept, Reason: "trusted_place"},
			radius.CodeAccessAccept, nil, nil},
		{"accept with message", policy.Result{Decision: policy.Accept, Message: "Welcome"},
			radius.CodeAccessAccept, []string{"Welcome"}, nil},
		{"reject", policy.Result{Decision: policy.Reject, Message: "Wrong code"},
			radius.CodeAccessReject, []string{"Wrong code"}, nil},
		{"reject, silent", policy.Result{Decision: policy.Reject},
			radius.CodeAccessReject, nil, nil},
		{"challenge", policy.Result{Decision: policy.Challenge, Message: "Code sent to +44 •••• 1234", State: "c0ffee"},
			radius.CodeAccessChallenge, []string{"Code sent to +44 •••• 1234"}, []string{"c0ffee"}},
		{"challenge without text", policy.Result{Decision: policy.Challenge, State: "c0ffee"},
			radius.CodeAccessChallenge, nil, []string{"c0ffee"}},
		{"unknown decision fails closed", policy.Result{Decision: policy.Decision(99), Message: "?"},
			radius.CodeAccessReject, []string{"?"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDecider{res: tc.res}
			p := testRequest(1, avp(typeUserName, "alice"))
			resp := Decide(d).ServeRADIUS(context.Background(),
				&Request{Client: &Client{Name: "gw", Secret: testSecret}, Packet: p})
			if resp == nil {
				t.Fatalf("got no response, want %v", tc.wantCode)
			}
			if resp.Code != tc.wantCode {
				t.Errorf("code: got %v, want %v", resp.Code, tc.wantCode)
			}
			if got := values(resp.Attributes, typeReplyMessage); !slices.Equal(got, tc.wantReply) {
				t.Errorf("Reply-Message: got %q, want %q", got, tc.wantReply)
			}
			if got := values(resp.Attributes, typeState); !slices.Equal(got, tc.wantState) {
				t.Errorf("State: got %q, want %q", got, tc.wantState)
			}
			if _, err := encodeResponse(resp.Code, resp.Attributes, p, testSecret); err != nil {
				t.Errorf("encode the response: %v", err)
			}
		})
	}
}

func values(attrs radius.Attributes, typ radius.Type) []string {
	var out []string
	for _, a := range attrs {
		if a.Type == typ {
			out = append(out, string(a.Attribute))
		}
	}
	return out
}

// TestDecideLongReplyMessage: a text longer than one attribute holds goes
// over several Reply-Messages, none longer than 253 bytes, none cut inside
// a character, which put together give the text again.
func TestDecideLongReplyMessage(t *testing.T) {
	// The case: a 174-byte resend_wait joined to a 170-byte
	// code_sent, whose instruction ended up cut off.
	wait := "You asked for a new code too soon: the code we sent a moment ago is still on its way and stays valid. Please wait 27 seconds before you ask for another one, or use the one you have."
	sent := "We have sent a text message with a six-digit sign-in code to your mobile phone +31 6*****01. Enter the code here to continue, or type resend to get a new code sent to you."
	tests := []struct {
		name  string
		msg   string
		parts int
	}{
		{"ASCII, 253", strings.Repeat("a", 253), 1},
		{"ASCII, 254", strings.Repeat("a", 254), 2},
		{"ASCII, 1000", strings.Repeat("a", 1000), 4},
		{"2-byte characters", strings.Repeat("é", 200), 2},
		{"3-byte characters after two ASCII", "ab" + strings.Repeat("€", 100), 2},
		{"4-byte characters after two ASCII", "ab" + strings.Repeat("😀", 70), 2},
		{"words", strings.Repeat("word ", 100), 2},
		{"resend_wait and code_sent", wait + " " + sent, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDecider{res: policy.Result{Decision: policy.Challenge, Message: tc.msg, State: "s"}}
			p := testRequest(1, avp(typeUserName, "alice"))
			resp := Decide(d).ServeRADIUS(context.Background(),
				&Request{Client: &Client{Name: "gw", Secret: testSecret}, Packet: p})
			got := values(resp.Attributes, typeReplyMessage)
			if len(got) != tc.parts {
				t.Errorf("Reply-Messages: got %d, want %d", len(got), tc.parts)
			}
			for i, part := range got {
				if len(part) > 253 || part == "" {
					t.Errorf("part %d: %d bytes, want 1 to 253", i, len(part))
				}
				if !utf8.ValidString(part) {
					t.Errorf("part %d is not valid UTF-8: %q", i, part)
				}
			}
			if all := strings.Join(got, ""); all != tc.msg {
				t.Errorf("put together: got %q, want %q", all, tc.msg)
			}
			if _, err := encodeResponse(resp.Code, resp.Attributes, p, testSecret); err != nil {
				t.Errorf("encode the response: %v", err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want []string
	}{
		{"", 8, nil},
		{"abc", 8, []string{"abc"}},
		{"abcdefgh", 8, []string{"abcdefgh"}},
		{"abcdefghi", 8, []string{"abcdefgh", "i"}},
		{"abcd efghi", 8, []string{"abcd ", "efghi"}}, // at the space in the second half
		{"a bcdefghi", 8, []string{"a bcdefg", "hi"}}, // not at one in the first half
		{"héllo wörld", 8, []string{"héllo ", "wörld"}},
		{"aaaaaaa€", 8, []string{"aaaaaaa", "€"}},
		{"aaaaaa😀", 8, []string{"aaaaaa", "😀"}},
		{"\x80\x80\x80\x80\x80\x80\x80\x80\x80", 8, []string{"\x80\x80\x80\x80\x80\x80\x80\x80", "\x80"}}, // not UTF-8: cut at n
	}
	for _, tc := range tests {
		if got := split(tc.s, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("split(%q, %d): got %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestDecideOverUDP(t *testing.T) {
	d := &recordingDecider{res: policy.Result{Decision: policy.Challenge, Message: "Enter the code", State: "st-1"}}
	c := loopbackClient(t, "127.0.0.1:0")
	c.StripRealm = true
	c.ClientIP = mustIPSource(t, "Calling-Station-Id")
	c.Tenant = "acme"
	h := startServer(t, "127.0.0.1:0", &Server{Handler: Decide(d), Clients: NewClients([]*Client{c})})

	req := radius.New(radius.CodeAccessRequest, c.Secret)
	req.Add(typeUserName, radius.Attribute("alice@acme.example"))
	req.Attributes = append(req.Attributes, userPassword(t, req, "correct horse", c.Secret))
	req.Add(typeCallingStationID, radius.Attribute("203.0.113.9"))
	signRequest(t, req, c.Secret)

	resp, err := exchange(h.addr, req, 5*time.Second)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if resp.Code != radius.CodeAccessChallenge {
		t.Errorf("code: got %v, want %v", resp.Code, radius.CodeAccessChallenge)
	}
	if got := string(resp.Get(typeState)); got != "st-1" {
		t.Errorf("State: got %q, want %q", got, "st-1")
	}
	if got := string(resp.Get(typeReplyMessage)); got != "Enter the code" {
		t.Errorf("Reply-Message: got %q, want %q", got, "Enter the code")
	}
	want := policy.Request{Client: c.Name, Tenant: "acme", User: "alice", Password: "correct horse",
		IP: netip.MustParseAddr("203.0.113.9")}
	if got := d.requests(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("policy.Requests:\ngot  %+v\nwant [%+v]", got, want)
	}
}

// TestServerAnswerFits: a long text and a request full of Proxy-States (a
// long proxy chain, or someone making the answer grow) still give an
// answer within 4096 bytes, with every Proxy-State and as much of the text
// as fits.
func TestServerAnswerFits(t *testing.T) {
	c := loopbackClient(t, "127.0.0.1:0")
	text := strings.Repeat("a long text ", 300) // 3600 bytes
	h := startServer(t, "127.0.0.1:0", &Server{
		Handler: Decide(&recordingDecider{res: policy.Result{Decision: policy.Challenge, Message: text, State: "s"}}),
		Clients: NewClients([]*Client{c}),
	})
	for _, n := range []int{0, 8, 14} {
		t.Run(fmt.Sprintf("%d Proxy-States", n), func(t *testing.T) {
			req := radius.New(radius.CodeAccessRequest, c.Secret)
			req.Add(typeUserName, radius.Attribute("alice"))
			var want []string
			for i := range n {
				ps := fmt.Sprintf("%03d", i) + strings.Repeat("p", 250)
				req.Add(typeProxyState, radius.Attribute(ps))
				want = append(want, ps)
			}
			reqWire := signRequest(t, req, c.Secret)
			conn := dial(t, h.addr)
			wire := roundTrip(t, conn, reqWire)
			if len(wire) > radius.MaxPacketLength {
				t.Fatalf("answer: %d bytes, want at most %d", len(wire), radius.MaxPacketLength)
			}
			checkAnswer(t, wire, reqWire, c.Secret)
			resp, err := radius.Parse(wire, c.Secret)
			if err != nil {
				t.Fatal(err)
			}
			if got := values(resp.Attributes, typeProxyState); !slices.Equal(got, want) {
				t.Errorf("Proxy-States: got %d, want %d", len(got), len(want))
			}
			got := strings.Join(values(resp.Attributes, typeReplyMessage), "")
			if !strings.HasPrefix(text, got) || (n == 0) != (got == text) {
				t.Errorf("text: got %d bytes of %d", len(got), len(text))
			}
			if string(resp.Get(typeState)) != "s" {
				t.Errorf("State: got %q, want s", resp.Get(typeState))
			}
		})
	}
}
