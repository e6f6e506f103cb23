package policy_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func TestDecideTrustedPlaces(t *testing.T) {
	tests := []struct {
		name string
		req  policy.Request
		want want
	}{
		{"office", login("alice", office), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
		{"office as mapped IPv6", login("alice", netip.MustParseAddr("::ffff:198.51.100.20")), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
		{"office IPv6", login("alice", netip.MustParseAddr("2001:db8:ac::99")), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
		{"home", login("alice", home), want{policy.Accept, "home_ip", "Home IP Allowed!", ""}},
		{"home as mapped IPv6", login("Alice", netip.MustParseAddr("::ffff:203.0.113.7")), want{policy.Accept, "home_ip", "Home IP Allowed!", ""}},
		{"unknown IP", login("alice", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"no IP", login("alice", netip.Addr{}), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"next to the office", login("alice", netip.MustParseAddr("198.51.101.20")), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"next to home", login("alice", netip.MustParseAddr("203.0.113.8")), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		// Home IPs are the user's own, office networks the tenant's own.
		{"another user's home", login("grace", home), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"another tenant's office", login("ken", office), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"tenant's own text", login("ivan", office), want{policy.Accept, "office_network", "Kantoor-IP toegestaan", ""}},
		{"tenant's own prompt", login("ivan", ipX), want{policy.Challenge, "challenge", "Voer de code uit uw app in", "totp"}},
		{"sms user from office", login("bob", office), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.decide(tt.req)
			check(t, res, tt.want)
			if want := store.NormalizeName(tt.req.User); res.User != want {
				t.Errorf("got user %q, want %q", res.User, want)
			}
			if n := len(f.sender.messages()); n != 0 {
				t.Errorf("got %d messages sent, want none", n)
			}
			if tt.want.decision != policy.Challenge {
				if n := f.countChallenges(); n != 0 {
					t.Errorf("got %d challenges stored, want none", n)
				}
			}
		})
	}
}

func TestDecideStoresChallenge(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("ALICE", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	if res.Tenant != "acme" || res.User != "alice" {
		t.Errorf("got user %q tenant %q, want alice and acme", res.User, res.Tenant)
	}
	ch, err := f.challenge(res.State)
	if err != nil {
		t.Fatalf("challenge %s: %v", res.State, err)
	}
	if ch.User != "alice" || ch.Client != "citrix" || ch.Method != "totp" || ch.EndUserIP != ipX || ch.Attempts != 0 {
		t.Errorf("got %+v, want alice on citrix by totp from %s, no attempts", ch, ipX)
	}
	if !ch.Expires.Equal(start.Add(3 * time.Minute)) {
		t.Errorf("got expiry %v, want %v", ch.Expires, start.Add(3*time.Minute))
	}
	if ch.CodeHash != nil {
		t.Errorf("got a code hash %x on a TOTP challenge, want none", ch.CodeHash)
	}
	// A login from elsewhere gets its own State (one from the same place
	// reuses the live challenge; see TestRepeatedLoginReusesChallenge).
	again := f.decide(login("alice", ipY))
	if again.State == res.State {
		t.Errorf("two logins share State %s", res.State)
	}
}

func TestDecideModes(t *testing.T) {
	tests := []struct {
		name   string
		req    policy.Request
		want   want
		tenant string
	}{
		{"optional without second factor", login("carol", ipX), want{policy.Accept, "no_second_factor_optional", "", ""}, "opt"},
		{"optional, user switched on, none set up", login("heidi", ipX), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""}, "opt"},
		{"optional with TOTP", login("ken", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}, "opt"},
		{"required without second factor", login("dave", ipX), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""}, "acme"},
		// The tenant's mode comes before the trusted places (PRODUCT.md 3c, 3e).
		{"required without second factor at the office", login("dave", office), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""}, "acme"},
		{"tenant off", login("frank", ipX), want{policy.Accept, "tenant_2fa_off", "", ""}, "off"},
		{"user off", login("erin", ipX), want{policy.Accept, "user_2fa_off", "", ""}, "acme"},
		{"unknown user", login("nobody", ipX), want{policy.Reject, "unknown_user", msgs.BadPassword, ""}, "acme"},
		{"unknown user, tenant off but not allowing unknown users", withTenant(login("nobody", ipX), "off"), want{policy.Reject, "unknown_user", msgs.BadPassword, ""}, "off"},
		{"unknown user allowed, optional", withTenant(login("nobody", ipX), "open"), want{policy.Accept, "no_second_factor_optional", "", ""}, "open"},
		{"unknown user allowed, required", withTenant(login("nobody", ipX), "strictopen"), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""}, "strictopen"},
		{"no user name", login("", ipX), want{policy.Reject, "no_user_name", msgs.BadPassword, ""}, ""},
		{"blank user name", login("  ", ipX), want{policy.Reject, "no_user_name", msgs.BadPassword, ""}, ""},
		{"user's tenant not configured", login("mallory", ipX), want{policy.Reject, "unknown_tenant", msgs.Unavailable, ""}, "gone"},
		{"user without tenant takes the gateway's", login("judy", office), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}, "acme"},
		{"primary method not allowed by tenant", login("olivia", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}, "totponly"},
		{"no primary method, tenant's first usable", login("peggy", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}, "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.decide(tt.req)
			check(t, res, tt.want)
			if res.Tenant != tt.tenant {
				t.Errorf("got tenant %q, want %q", res.Tenant, tt.tenant)
			}
			if n := len(f.sender.messages()); n != 0 {
				t.Errorf("got %d messages sent, want none", n)
			}
		})
	}
}

func withTenant(r policy.Request, tenant string) policy.Request {
	r.Tenant = tenant
	return r
}

func TestDecideNoSender(t *testing.T) {
	// Without a Sender, SMS and e-mail cannot be used: bob has nothing else.
	f := newFixture(t, func(c *policy.Config) { c.Senders = nil })
	check(t, f.decide(login("bob", ipX)), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""})
	check(t, f.decide(login("rita", ipX)), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""})
	check(t, f.decide(login("alice", ipX)), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
}

func TestDecideSMS(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})

	sent := f.sender.messages()
	if len(sent) != 1 {
		t.Fatalf("got %d messages, want 1", len(sent))
	}
	m := sent[0]
	if m.Channel != "sms" || m.To != "+31612345678" {
		t.Errorf("got %s to %s, want sms to +31612345678", m.Channel, m.To)
	}
	if len(m.Code) != 6 || strings.Trim(m.Code, "0123456789") != "" {
		t.Fatalf("got code %q, want 6 digits", m.Code)
	}
	if want := "Your login code is " + m.Code; m.Text != want {
		t.Errorf("got text %q, want %q", m.Text, want)
	}

	ch, err := f.challenge(res.State)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Method != "sms" || ch.Destination != "+31 6*****78" || len(ch.CodeHash) == 0 {
		t.Errorf("got %+v, want an sms challenge to +31 6*****78 with a code hash", ch)
	}
	if strings.Contains(string(ch.CodeHash), m.Code) || ch.Salt == m.Code {
		t.Error("the stored challenge holds the code in the clear")
	}

	wrong := "000000"
	if m.Code == wrong {
		wrong = "111111"
	}
	again := f.decide(answer("bob", res.State, wrong, ipX))
	check(t, again, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "sms"})
	if again.State == res.State {
		t.Errorf("got the same State %s after a wrong code, want a new one", again.State)
	}
	if n := len(f.sender.messages()); n != 1 {
		t.Errorf("got %d messages after a wrong code, want still 1", n)
	}

	ok := f.decide(answer("bob", again.State, m.Code, ipX))
	check(t, ok, want{policy.Accept, "code_ok", "", "sms"})
	if n := f.countChallenges(); n != 0 {
		t.Errorf("got %d challenges left, want 0", n)
	}

	// The proved (user, IP) pair lets bob reconnect without a new code.
	check(t, f.decide(login("bob", ipX)), want{policy.Accept, "reconnect", "Reconnected", ""})
	if n := len(f.sender.messages()); n != 1 {
		t.Errorf("got %d messages after reconnecting, want still 1", n)
	}
}

func TestDecideSMSCodeIsSingleUse(t *testing.T) {
	f := newFixture(t)
	first := f.decide(login("bob", ipX))
	code := f.sender.messages()[0].Code
	check(t, f.decide(answer("bob", first.State, code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	check(t, f.decide(answer("bob", first.State, code, ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
}

func TestDecideSMSTenantDigits(t *testing.T) {
	f := newFixture(t)
	res := f.decide(withTenant(login("quinn", ipX), "opt"))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +49 1*****78 (or type resend)", "sms"})
	sent := f.sender.messages()
	if len(sent) != 1 || len(sent[0].Code) != 4 {
		t.Fatalf("got %+v, want one 4-digit code", sent)
	}
	check(t, f.decide(answer("quinn", res.State, sent[0].Code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
}

func TestDecideEmail(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("rita", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to r***@example.com (or type resend)", "email"})
	sent := f.sender.messages()
	if len(sent) != 1 || sent[0].Channel != "email" || sent[0].To != "rita@example.com" {
		t.Fatalf("got %+v, want one e-mail to rita@example.com", sent)
	}
	check(t, f.decide(answer("rita", res.State, sent[0].Code, ipX)), want{policy.Accept, "code_ok", "", "email"})
}

func TestDecideDeliveryFailed(t *testing.T) {
	failing := &failingSender{}
	f := newFixture(t, func(c *policy.Config) { c.Senders = allChannels(failing) })
	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Reject, "delivery_failed", msgs.DeliveryFailed, "sms"})
	if failing.calls != 1 {
		t.Errorf("got %d delivery attempts, want 1", failing.calls)
	}
	if n := f.countChallenges(); n != 0 {
		t.Errorf("got %d challenges stored after a failed delivery, want 0", n)
	}
	// TOTP users do not depend on delivery.
	check(t, f.decide(login("alice", ipX)), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
}

func TestDecideLocalPassword(t *testing.T) {
	local := func(user, pw string, ip netip.Addr) policy.Request {
		r := login(user, ip)
		r.FirstFactor, r.Password = policy.FirstFactorLocal, pw
		return r
	}
	tests := []struct {
		name string
		req  policy.Request
		want want
	}{
		{"right password at the office", local("grace", password, office), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
		{"right password elsewhere", local("Grace", password, ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"wrong password", local("grace", password+"!", office), want{policy.Reject, "bad_password", msgs.BadPassword, ""}},
		{"empty password", local("grace", "", office), want{policy.Reject, "bad_password", msgs.BadPassword, ""}},
		{"user without a password", local("alice", "", office), want{policy.Reject, "bad_password", msgs.BadPassword, ""}},
		// An unknown user looks like a wrong password.
		{"unknown user", local("nobody", password, office), want{policy.Reject, "bad_password", msgs.BadPassword, ""}},
		{"gateway checks the password", login("grace", office), want{policy.Accept, "office_network", "HQ IP Allowed!", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			check(t, f.decide(tt.req), tt.want)
		})
	}

	// In the answer to a challenge the password field carries the code.
	f := newFixture(t)
	res := f.decide(local("grace", password, ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	reply := local("grace", f.code(), ipX)
	reply.State = res.State
	check(t, f.decide(reply), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestDecideReconnect(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("alice", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	check(t, f.decide(answer("alice", res.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	proved := f.now

	steps := []struct {
		name  string
		after time.Duration // since the code was proved
		req   policy.Request
		want  want
	}{
		{"same IP", 0, login("alice", ipX), want{policy.Accept, "reconnect", "Reconnected", ""}},
		{"same IP, other spelling", time.Minute, login("ALICE", netip.MustParseAddr("::ffff:192.0.2.10")), want{policy.Accept, "reconnect", "Reconnected", ""}},
		{"new IP", time.Minute, login("alice", ipY), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"other user, same IP", time.Minute, login("grace", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
		{"end of the window", 10*time.Minute - time.Second, login("alice", ipX), want{policy.Accept, "reconnect", "Reconnected", ""}},
		{"after the window", 10*time.Minute + time.Second, login("alice", ipX), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.now = proved.Add(s.after)
			check(t, f.decide(s.req), s.want)
		})
	}
}

func TestDecideReconnectOff(t *testing.T) {
	// ivan's tenant has no reconnect window.
	f := newFixture(t)
	res := f.decide(withTenant(login("ivan", ipX), "nl"))
	check(t, f.decide(withTenant(answer("ivan", res.State, f.code(), ipX), "nl")), want{policy.Accept, "totp_ok", "", "totp"})
	check(t, f.decide(withTenant(login("ivan", ipX), "nl")), want{policy.Challenge, "challenge", "Voer de code uit uw app in", "totp"})
}

func TestDecideReconnectGatewayTenant(t *testing.T) {
	// judy has no tenant of her own and logs in through acme's gateway:
	// acme's reconnect window applies to her as its other settings do.
	f := newFixture(t)
	res := f.decide(login("judy", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	check(t, f.decide(answer("judy", res.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	f.advance(time.Minute)
	check(t, f.decide(login("judy", ipX)), want{policy.Accept, "reconnect", "Reconnected", ""})
}
