package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

const e2eConfig = `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: guacamole, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     client_ip_attribute: Calling-Station-Id, password: gateway}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp, sms],
     code_ttl: 3m, max_attempts: 3, reconnect_window: 8h}
  - {name: loose, mode: optional, methods: [totp, sms]}
delivery: {allow_console: true, sms: [console]}
`

// A known TOTP secret, so the test can compute codes.
const testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func totpNow(t *testing.T) string {
	t.Helper()
	code, err := otp.TOTPCode(testSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongTOTP returns a six-digit code that no step within otp.MaxDrift
// matches, not even as one too far out to be accepted alone.
func wrongTOTP(t *testing.T) string {
	t.Helper()
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", n)
		if _, ok := otp.MatchTOTPNear(testSecret, c, time.Now(), 0, otp.MaxDrift+1); !ok {
			return c
		}
	}
}

func replyMessage(p *radius.Packet) string { return rfc2865.ReplyMessage_GetString(p) }

func mustExchange(t *testing.T, addr string, req request) *radius.Packet {
	t.Helper()
	if req.wait == 0 {
		req.wait = answerWait
	}
	p, _, err := exchange(t, addr, req)
	if err != nil {
		t.Fatalf("%s: %v", req.user, err)
	}
	return p
}

func expect(t *testing.T, p *radius.Packet, code radius.Code, message string) {
	t.Helper()
	if p.Code != code {
		t.Fatalf("got %s (%q), want %s", p.Code, replyMessage(p), code)
	}
	if message != "" && replyMessage(p) != message {
		t.Fatalf("got Reply-Message %q, want %q", replyMessage(p), message)
	}
}

func TestServeTrustedPlaces(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "alice", "--tenant", "acme", "--home-ip", "198.51.100.7")
	s.cli(t, "user", "totp", "alice", "--secret", testSecret)
	addr := s.addrs[0]

	tests := []struct {
		name, ip string
		code     radius.Code
		message  string
	}{
		{"office network", "192.0.2.44", radius.CodeAccessAccept, "HQ IP Allowed!"},
		{"office network with port", "192.0.2.44:51234", radius.CodeAccessAccept, "HQ IP Allowed!"},
		{"home IP", "198.51.100.7", radius.CodeAccessAccept, "Home IP Allowed!"},
		{"unknown IP", "203.0.113.9", radius.CodeAccessChallenge, "Enter the code from your authenticator app"},
		{"no IP sent", "", radius.CodeAccessChallenge, "Enter the code from your authenticator app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustExchange(t, addr, request{user: "alice", password: "pw", callingStation: tt.ip})
			expect(t, p, tt.code, tt.message)
			if tt.code == radius.CodeAccessChallenge {
				if st := rfc2865.State_Get(p); len(st) != 32 {
					t.Errorf("got State of %d bytes, want 32 hex characters", len(st))
				}
			}
		})
	}
}

func TestServeTOTPFlow(t *testing.T) {
	s := startServer(t, e2eConfig)
	for _, u := range []string{"bob", "carol", "dave"} {
		s.cli(t, "user", "add", u, "--tenant", "acme")
		s.cli(t, "user", "totp", u, "--secret", testSecret)
	}
	addr := s.addrs[0]
	login := func(user, ip string) *radius.Packet {
		p := mustExchange(t, addr, request{user: user, password: "pw", callingStation: ip})
		expect(t, p, radius.CodeAccessChallenge, "")
		return p
	}
	answer := func(user, ip string, ch *radius.Packet, code string) *radius.Packet {
		return mustExchange(t, addr, request{user: user, password: code, callingStation: ip, state: string(rfc2865.State_Get(ch))})
	}

	t.Run("right code accepted, replay refused", func(t *testing.T) {
		ch := login("bob", "203.0.113.9")
		code := totpNow(t)
		expect(t, answer("bob", "203.0.113.9", ch, code), radius.CodeAccessAccept, "")
		// A fresh login from another IP with the same code: the step is spent.
		ch = login("bob", "203.0.113.10")
		p := answer("bob", "203.0.113.10", ch, code)
		if p.Code == radius.CodeAccessAccept {
			t.Fatalf("replayed TOTP code accepted")
		}
		// The used State cannot be answered again either.
		expect(t, answer("bob", "203.0.113.10", ch, code), radius.CodeAccessReject, "")
	})

	t.Run("wrong code challenged again, then rejected", func(t *testing.T) {
		ch := login("carol", "203.0.113.20")
		bad := wrongTOTP(t)
		p := answer("carol", "203.0.113.20", ch, bad)
		expect(t, p, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
		if bytes.Equal(rfc2865.State_Get(p), rfc2865.State_Get(ch)) {
			t.Fatalf("re-challenge reused the State")
		}
		p = answer("carol", "203.0.113.20", p, bad)
		expect(t, p, radius.CodeAccessChallenge, "Wrong code, 1 try left")
		p = answer("carol", "203.0.113.20", p, bad)
		expect(t, p, radius.CodeAccessReject, "Wrong code. Please log in again.")
	})

	t.Run("reconnect from the same IP, not from another", func(t *testing.T) {
		ch := login("dave", "203.0.113.30")
		expect(t, answer("dave", "203.0.113.30", ch, totpNow(t)), radius.CodeAccessAccept, "")
		p := mustExchange(t, addr, request{user: "dave", password: "pw", callingStation: "203.0.113.30"})
		expect(t, p, radius.CodeAccessAccept, "Reconnected")
		p = mustExchange(t, addr, request{user: "dave", password: "pw", callingStation: "203.0.113.31"})
		expect(t, p, radius.CodeAccessChallenge, "")
	})

	t.Run("unknown State rejected with a message", func(t *testing.T) {
		p := mustExchange(t, addr, request{user: "bob", password: "123456", state: "00112233445566778899aabbccddeeff"})
		expect(t, p, radius.CodeAccessReject, "Your code has expired. Please log in again.")
	})

	// Every decision is in the audit log with its reason.
	out := s.cli(t, "audit", "--user", "carol", "--json", "--limit", "0")
	for _, want := range []string{`"reason":"challenge"`, `"reason":"wrong_code"`, `"reason":"wrong_code_final"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log for carol lacks %s:\n%s", want, out)
		}
	}
}

func TestServeModes(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "erin", "--tenant", "loose")
	s.cli(t, "user", "add", "frank", "--tenant", "acme")
	s.cli(t, "user", "add", "gina", "--tenant", "acme")
	s.cli(t, "user", "set", "gina", "--2fa", "off")
	addr := s.addrs[0]
	tests := []struct {
		user    string
		code    radius.Code
		message string
	}{
		{"erin", radius.CodeAccessAccept, ""},
		{"frank", radius.CodeAccessReject, "Two-factor authentication is required but not set up for your account. Contact your administrator."},
		{"gina", radius.CodeAccessAccept, ""},
		{"nobody", radius.CodeAccessReject, "Wrong user name or password"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			expect(t, mustExchange(t, addr, request{user: tt.user, password: "pw", callingStation: "203.0.113.9"}), tt.code, tt.message)
		})
	}
}

func TestServeSentCode(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "hank", "--tenant", "acme", "--phone", "+31 6 1234 5678")
	addr := s.addrs[0]
	ch := mustExchange(t, addr, request{user: "hank", password: "pw", callingStation: "203.0.113.9"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	code := s.lastCode(t, "+31612345678")
	p := mustExchange(t, addr, request{user: "hank", password: code, callingStation: "203.0.113.9", state: string(rfc2865.State_Get(ch))})
	expect(t, p, radius.CodeAccessAccept, "")
}

func TestServeProtocol(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "ivy", "--tenant", "acme")
	s.cli(t, "user", "totp", "ivy", "--secret", testSecret)
	addr := s.addrs[0]

	t.Run("retransmission gets the byte-identical answer", func(t *testing.T) {
		raddr, _ := net.ResolveUDPAddr("udp", addr)
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		raw := encodeRequest(t, request{user: "ivy", password: "pw", callingStation: "203.0.113.9"})
		_, first, err := roundTrip(t, conn, raw, "")
		if err != nil {
			t.Fatal(err)
		}
		_, second, err := roundTrip(t, conn, raw, "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("retransmission answered differently:\n%x\n%x", first, second)
		}
		// The decision ran once: one challenge in the audit log for ivy.
		out := s.cli(t, "audit", "--user", "ivy", "--json")
		if n := strings.Count(out, `"decision":"challenge"`); n != 1 {
			t.Fatalf("got %d challenge decisions, want 1:\n%s", n, out)
		}
	})

	t.Run("missing Message-Authenticator: no answer", func(t *testing.T) {
		p, _, err := exchange(t, addr, request{user: "ivy", password: "pw", noMA: true})
		if err != errNoAnswer {
			t.Fatalf("got %s, want no answer", codeName(p))
		}
	})
	t.Run("wrong Message-Authenticator: no answer", func(t *testing.T) {
		p, _, err := exchange(t, addr, request{user: "ivy", password: "pw", badMA: true})
		if err != errNoAnswer {
			t.Fatalf("got %s, want no answer", codeName(p))
		}
	})
	t.Run("wrong shared secret: no answer", func(t *testing.T) {
		raw := encodeRequest(t, request{user: "ivy", password: "pw", secret: "not-the-secret"})
		if _, _, err := sendRaw(t, addr, "", raw, "not-the-secret"); err != errNoAnswer {
			t.Fatalf("got %v, want no answer", err)
		}
	})
	t.Run("unknown client: no answer", func(t *testing.T) {
		p, _, err := exchange(t, addr, request{user: "ivy", password: "pw", from: "127.0.0.2"})
		if err != errNoAnswer {
			t.Fatalf("got %s, want no answer", codeName(p))
		}
	})
	t.Run("Proxy-State echoed in order", func(t *testing.T) {
		states := [][]byte{[]byte("first proxy"), []byte("second proxy")}
		p := mustExchange(t, addr, request{user: "ivy", password: "pw", callingStation: "192.0.2.1", proxyStates: states})
		expect(t, p, radius.CodeAccessAccept, "HQ IP Allowed!")
		var got [][]byte
		for _, a := range p.Attributes {
			if a.Type == rfc2865.ProxyState_Type {
				got = append(got, a.Attribute)
			}
		}
		if len(got) != 2 || !bytes.Equal(got[0], states[0]) || !bytes.Equal(got[1], states[1]) {
			t.Fatalf("got Proxy-States %q, want %q", got, states)
		}
	})
}

func TestServeIPv6(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	} else {
		c.Close()
	}
	s := startServer(t, strings.Replace(strings.Replace(e2eConfig,
		`listen: ["127.0.0.1:0"]`, `listen: ["127.0.0.1:0", "[::1]:0"]`, 1),
		`- {name: guacamole,`, `- {name: v6gw, address: "::1", secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
  - {name: guacamole,`, 1))
	s.cli(t, "user", "add", "jan", "--tenant", "acme", "--phone", "+31612345678", "--home-ip", "2001:db8::7")
	if len(s.addrs) != 2 || !strings.HasPrefix(s.addrs[1], "[::1]:") {
		t.Fatalf("got listeners %v, want one on ::1", s.addrs)
	}
	p := mustExchange(t, s.addrs[1], request{user: "jan", password: "pw", callingStation: "[2001:db8::7]:443"})
	expect(t, p, radius.CodeAccessAccept, "Home IP Allowed!")
	out := s.cli(t, "audit", "--user", "jan")
	if !strings.Contains(out, "v6gw") || !strings.Contains(out, "2001:db8::7") {
		t.Fatalf("audit does not show the IPv6 client and IP:\n%s", out)
	}
}

// TestServeShutdownKeepsAudit stops the server as SIGTERM does and checks
// that every decision reached the store and the store opens cleanly.
func TestServeShutdownKeepsAudit(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "kim", "--tenant", "acme")
	s.cli(t, "user", "totp", "kim", "--secret", testSecret)
	const n = 40
	for i := range n {
		mustExchange(t, s.addrs[0], request{user: "kim", password: "pw", callingStation: fmt.Sprintf("192.0.2.%d", i+1)})
	}
	s.stop(t)
	if _, err := os.Stat(filepath.Join(s.dir, "otpgate.db.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind after shutdown: %v", err)
	}
	db, err := store.Open(filepath.Join(s.dir, "otpgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []store.Entry
	db.View(func(tx *store.Tx) error {
		got, err = tx.AuditLog(0, func(e store.Entry) bool { return e.User == "kim" && e.Admin == nil })
		return err
	})
	if len(got) != n {
		t.Fatalf("got %d audit entries for kim after shutdown, want %d", len(got), n)
	}
}
