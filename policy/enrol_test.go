package policy_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func (f *fixture) user(name string) store.User {
	f.t.Helper()
	var u store.User
	if err := f.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func withLockout(failures int, window, duration time.Duration) func(*policy.Config) {
	return withTenantChange("acme", func(t *policy.Tenant) {
		t.Lockout = policy.Lockout{Failures: failures, Window: window, Duration: duration}
	})
}

func TestLockout(t *testing.T) {
	f := newFixture(t, withLockout(3, 15*time.Minute, 30*time.Minute))
	wrong := f.wrongCode()
	// Two wrong codes, a new login, a third wrong code: locked.
	res := f.decide(login("alice", ipX))
	res = f.decide(answer("alice", res.State, wrong, ipX))
	check(t, res, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
	check(t, f.decide(answer("alice", res.State, wrong, ipX)), want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"})
	res = f.decide(login("alice", ipY))
	check(t, f.decide(answer("alice", res.State, wrong, ipY)), want{policy.Reject, "locked", msgs.Locked, "totp"})
	if u := f.user("alice"); !u.LockedUntil.Equal(start.Add(30 * time.Minute)) {
		t.Errorf("got locked until %v, want %v", u.LockedUntil, start.Add(30*time.Minute))
	}

	// Locked: rejected even from a trusted place, with the same text
	// whether or not the password is right.
	check(t, f.decide(login("alice", office)), want{policy.Reject, "locked", msgs.Locked, ""})
	local := login("grace", ipX)
	local.FirstFactor, local.Password = policy.FirstFactorLocal, "wrong password"
	f.addUsers(func() store.User { u := f.user("grace"); u.LockedUntil = start.Add(time.Hour); return u }())
	check(t, f.decide(local), want{policy.Reject, "locked", msgs.Locked, ""})
	local.Password = password
	check(t, f.decide(local), want{policy.Reject, "locked", msgs.Locked, ""})

	// The lock ends by itself.
	f.advance(30 * time.Minute)
	check(t, f.decide(login("alice", office)), want{policy.Accept, "office_network", msgs.OfficeIP, ""})
}

func TestLockoutWindow(t *testing.T) {
	f := newFixture(t, withLockout(2, 10*time.Minute, time.Hour))
	wrong := f.wrongCode()
	res := f.decide(login("alice", ipX))
	f.decide(answer("alice", res.State, wrong, ipX))
	f.advance(11 * time.Minute) // the first failure falls out of the window
	res = f.decide(login("alice", ipY))
	check(t, f.decide(answer("alice", res.State, f.wrongCode(), ipY)), want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
	// A right code clears the count.
	res = f.decide(login("alice", netip.MustParseAddr("192.0.2.30")))
	check(t, f.decide(answer("alice", res.State, f.code(), netip.MustParseAddr("192.0.2.30"))), want{policy.Accept, "totp_ok", "", "totp"})
	if u := f.user("alice"); len(u.Failures) != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("got failures %v, locked until %v, want none", u.Failures, u.LockedUntil)
	}
}

func TestRecoveryCodes(t *testing.T) {
	f := newFixture(t)
	codes, hashes, err := policy.NewRecoveryCodes(nil, f.key, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != policy.RecoveryCodes || len(hashes) != len(codes) {
		t.Fatalf("got %d codes, %d hashes, want %d", len(codes), len(hashes), policy.RecoveryCodes)
	}
	for _, c := range codes {
		if len(c) != 14 || strings.Count(c, "-") != 2 {
			t.Errorf("code %q is not three groups of four digits", c)
		}
	}
	u := f.user("alice")
	u.Recovery = hashes
	f.addUsers(u)

	// A recovery code answers a TOTP challenge, typed with spaces.
	res := f.decide(login("alice", ipX))
	typed := strings.ReplaceAll(codes[3], "-", " ")
	check(t, f.decide(answer("alice", res.State, typed, ipX)),
		want{policy.Accept, "recovery_code", "Recovery code accepted. 9 left; ask your administrator for new ones.", "totp"})
	// ... once.
	res = f.decide(login("alice", ipY))
	check(t, f.decide(answer("alice", res.State, codes[3], ipY)), want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
	// Another answers an SMS challenge.
	b := f.user("bob")
	_, b.Recovery, _ = policy.NewRecoveryCodes(nil, f.key, "bob")
	f.addUsers(b)
	res = f.decide(login("alice", netip.MustParseAddr("192.0.2.31")))
	check(t, f.decide(answer("alice", res.State, codes[0], netip.MustParseAddr("192.0.2.31"))),
		want{policy.Accept, "recovery_code", "Recovery code accepted. 8 left; ask your administrator for new ones.", "totp"})
	// Alice's codes are not Bob's.
	res = f.decide(login("bob", ipX))
	check(t, f.decide(answer("bob", res.State, codes[1], ipX)), want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "sms"})
}

func TestLinkTOTPAtLogin(t *testing.T) {
	f := newFixture(t)
	// bob gets codes by SMS and is linking an authenticator app.
	b := f.user("bob")
	b.PendingTOTP = f.totpUser(store.User{Name: "bob"}).TOTP
	f.addUsers(b)

	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPLink, "totp"})
	if n := len(f.sender.messages()); n != 0 {
		t.Errorf("got %d SMS while linking, want none", n)
	}
	// Not scanned yet: the SMS still works.
	sw := f.decide(answer("bob", res.State, "sms", ipX))
	check(t, sw, want{policy.Challenge, "switch", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	check(t, f.decide(answer("bob", sw.State, f.sender.messages()[0].Code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	if u := f.user("bob"); u.PendingTOTP == nil || u.TOTP != nil {
		t.Fatalf("got %+v, want the TOTP still pending", u)
	}

	// Scanned: the first right code links it.
	res = f.decide(login("bob", ipY))
	check(t, f.decide(answer("bob", res.State, f.code(), ipY)), want{policy.Accept, "totp_linked", msgs.TOTPLinked, "totp"})
	u := f.user("bob")
	if u.PendingTOTP != nil || u.TOTP == nil || u.Method != policy.MethodTOTP || u.BackupMethod != policy.MethodSMS {
		t.Errorf("got %+v, want TOTP active and primary, SMS as backup", u)
	}
	f.advance(time.Minute)
	res = f.decide(login("bob", netip.MustParseAddr("192.0.2.40")))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
}

func TestRememberedIP(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) {
		t.RememberIPFor, t.MaxRememberedIPs, t.ReconnectWindow = 24*time.Hour, 2, 0
	}))
	ips := []netip.Addr{netip.MustParseAddr("192.0.2.51"), netip.MustParseAddr("192.0.2.52"), netip.MustParseAddr("192.0.2.53")}
	for _, ip := range ips {
		res := f.decide(login("alice", ip))
		check(t, f.decide(answer("alice", res.State, f.code(), ip)), want{policy.Accept, "totp_ok", "", "totp"})
		f.advance(time.Minute)
	}
	// Only the newest two are kept.
	if u := f.user("alice"); len(u.Remembered) != 2 || u.Remembered[0].IP != ips[1] {
		t.Fatalf("got remembered %+v, want the last two", u.Remembered)
	}
	check(t, f.decide(login("alice", ips[2])), want{policy.Accept, "remembered_ip", msgs.HomeIP, ""})
	check(t, f.decide(login("alice", ips[0])), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	// They expire by themselves.
	f.advance(24 * time.Hour)
	check(t, f.decide(login("alice", ips[2])), want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
}

func TestEnrolmentOnFile(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Enrolment = true }))
	f.addUsers(store.User{Name: "xena", Tenant: "acme", Phone: "+31600000001"})
	res := f.decide(login("xena", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****01 (or type resend)", "sms"})
	check(t, f.decide(answer("xena", res.State, f.sender.messages()[0].Code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	if u := f.user("xena"); u.Method != policy.MethodSMS {
		t.Errorf("got method %q after enrolment, want sms", u.Method)
	}
}

func TestNoEnrolmentWithoutTheSetting(t *testing.T) {
	f := newFixture(t)
	f.addUsers(store.User{Name: "xena", Tenant: "acme", Phone: "+31600000001"})
	check(t, f.decide(login("xena", ipX)), want{policy.Reject, "no_second_factor", msgs.NoSecondFactor, ""})
}

func TestEnrolmentAsksPhone(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Enrolment, t.AskPhone, t.CountryCode = true, true, "31" }))
	res := f.decide(login("dave", ipX))
	check(t, res, want{policy.Challenge, "ask_phone", msgs.AskPhone, "sms"})
	res = f.decide(answer("dave", res.State, "not a number", ipX))
	check(t, res, want{policy.Challenge, "bad_phone", msgs.BadPhone + " " + msgs.AskPhone, "sms"})
	res = f.decide(answer("dave", res.State, "06 1111 2222", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****22 (or type resend)", "sms"})
	sent := f.sender.messages()
	if len(sent) != 1 || sent[0].To != "+31611112222" {
		t.Fatalf("got %+v, want one SMS to +31611112222", sent)
	}
	if u := f.user("dave"); u.Phone != "" {
		t.Fatalf("the number was saved before it was proved: %+v", u)
	}
	check(t, f.decide(answer("dave", res.State, sent[0].Code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	if u := f.user("dave"); u.Phone != "+31611112222" || u.Method != policy.MethodSMS {
		t.Errorf("got %+v, want the number saved and SMS as method", u)
	}
}

// TestEnrolmentTooManyBadPhones: the last of too many answers that are no
// phone number is told so, not "Wrong code" (no code was involved); an
// enrolment at login moves the record's Updated time.
func TestEnrolmentTooManyBadPhones(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) { t.Enrolment, t.AskPhone, t.CountryCode = true, true, "31" }))
	res := f.decide(login("dave", ipX))
	for range 2 {
		res = f.decide(answer("dave", res.State, "not a number", ipX))
		check(t, res, want{policy.Challenge, "bad_phone", msgs.BadPhone + " " + msgs.AskPhone, "sms"})
	}
	res = f.decide(answer("dave", res.State, "not a number", ipX))
	check(t, res, want{policy.Reject, "bad_phone_final", msgs.TooManyBadPhones, "sms"})
	if strings.Contains(res.Message, "code") {
		t.Errorf("got %q after wrong phone numbers", res.Message)
	}

	f.addUsers(store.User{Name: "xena", Tenant: "acme", Phone: "+31600000001", Created: start, Updated: start})
	f.advance(time.Hour)
	res = f.decide(login("xena", ipX))
	check(t, f.decide(answer("xena", res.State, f.sender.messages()[0].Code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	if u := f.user("xena"); !u.Updated.Equal(start.Add(time.Hour)) {
		t.Errorf("got updated %v after enrolment at login, want %v", u.Updated, start.Add(time.Hour))
	}
}
