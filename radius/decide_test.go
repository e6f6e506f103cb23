package radius

import (
	"context"
	"net/netip"
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
			if got[0] != tc.want {
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

func TestDecideLongReplyMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want int // bytes kept
	}{
		{"ASCII, 253", strings.Repeat("a", 253), 253},
		{"ASCII, 254", strings.Repeat("a", 254), 253},
		{"ASCII, 1000", strings.Repeat("a", 1000), 253},
		{"2-byte characters", strings.Repeat("é", 200), 252},
		{"2-byte characters after one ASCII", "a" + strings.Repeat("é", 200), 253},
		{"3-byte characters", strings.Repeat("€", 100), 252},
		{"3-byte characters after one ASCII", "a" + strings.Repeat("€", 100), 253},
		{"3-byte characters after two ASCII", "ab" + strings.Repeat("€", 100), 251},
		{"4-byte characters", strings.Repeat("😀", 70), 252},
		{"4-byte characters after one ASCII", "a" + strings.Repeat("😀", 70), 253},
		{"4-byte characters after two ASCII", "ab" + strings.Repeat("😀", 70), 250},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDecider{res: policy.Result{Decision: policy.Challenge, Message: tc.msg, State: "s"}}
			p := testRequest(1, avp(typeUserName, "alice"))
			resp := Decide(d).ServeRADIUS(context.Background(),
				&Request{Client: &Client{Name: "gw", Secret: testSecret}, Packet: p})
			got := values(resp.Attributes, typeReplyMessage)
			if len(got) != 1 {
				t.Fatalf("Reply-Messages: got %d, want 1", len(got))
			}
			if len(got[0]) != tc.want {
				t.Errorf("length: got %d bytes, want %d", len(got[0]), tc.want)
			}
			if !utf8.ValidString(got[0]) {
				t.Errorf("got invalid UTF-8 %q", got[0][len(got[0])-4:])
			}
			if !strings.HasPrefix(tc.msg, got[0]) {
				t.Errorf("got %q, want a prefix of the message", got[0])
			}
			if _, err := encodeResponse(resp.Code, resp.Attributes, p, testSecret); err != nil {
				t.Errorf("encode the response: %v", err)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"héllo", 1, "h"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"€", 2, ""},
	}
	for _, tc := range tests {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d): got %q, want %q", tc.s, tc.n, got, tc.want)
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
	if got := d.requests(); len(got) != 1 || got[0] != want {
		t.Errorf("policy.Requests:\ngot  %+v\nwant [%+v]", got, want)
	}
}
