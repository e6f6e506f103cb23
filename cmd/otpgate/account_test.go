package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
)

const accountConfig = `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - name: acme
    mode: required
    office_networks: [192.0.2.0/24]
    methods: [totp, sms]
    country_code: "31"
    reconnect_window: 0s
    remember_ip_for: 1h
    enrolment: true
    ask_phone: true
    lockout: {failures: 2, window: 10m, duration: 1h}
delivery: {allow_console: true, sms: [console]}
`

// accountWorld is a server on accountConfig with a clock the test moves.
type accountWorld struct {
	*server
	clock *clock
}

func startAccount(t *testing.T) *accountWorld {
	c := newClock()
	return &accountWorld{server: startServerAt(t, accountConfig, c.Now), clock: c}
}

func (w *accountWorld) login(t *testing.T, user, ip string) *radius.Packet {
	t.Helper()
	return mustExchange(t, w.addrs[0], request{user: user, password: "pw", callingStation: ip})
}

func (w *accountWorld) answer(t *testing.T, user, ip, text string, ch *radius.Packet) *radius.Packet {
	t.Helper()
	return mustExchange(t, w.addrs[0], request{user: user, password: text, callingStation: ip, state: string(rfc2865.State_Get(ch))})
}

// code is the TOTP code for secret at the server's time.
func (w *accountWorld) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := otp.TOTPCode(secret, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secretOf takes the secret out of the otpauth:// link "user totp" prints.
func secretOf(t *testing.T, out string) string {
	t.Helper()
	link := regexp.MustCompile(`otpauth://\S+`).FindString(out)
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("no otpauth link in:\n%s", out)
	}
	return u.Query().Get("secret")
}

func TestAccountLinkTOTPAtLogin(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "lin", "--tenant", "acme")
	out := w.cli(t, "user", "totp", "lin")
	if !strings.Contains(out, "becomes active once a code from it is proved") {
		t.Fatalf("user totp did not say the secret is pending:\n%s", out)
	}
	secret := secretOf(t, out)
	if show := squash(w.cli(t, "user", "show", "lin")); !strings.Contains(show, "totp: pending") {
		t.Fatalf("got\n%s\nwant totp: pending", show)
	}
	ch := w.login(t, "lin", "203.0.113.5")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app to finish linking it")
	expect(t, w.answer(t, "lin", "203.0.113.5", w.code(t, secret), ch), radius.CodeAccessAccept, "Your authenticator app is linked.")
	if show := squash(w.cli(t, "user", "show", "lin")); !strings.Contains(show, "totp: active") || !strings.Contains(show, "method: totp") {
		t.Fatalf("got\n%s\nwant totp active and primary", show)
	}
	w.clock.Advance(time.Minute)
	ch = w.login(t, "lin", "203.0.113.6")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
}

func TestAccountConfirmTOTPByCLI(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "con", "--tenant", "acme")
	secret := secretOf(t, w.cli(t, "user", "totp", "con"))
	if out, err := w.cliErr("user", "totp", "con", "--confirm", "000000"); err == nil || !strings.Contains(err.Error(), "that code does not match") {
		t.Fatalf("a wrong --confirm code: got %v\n%s", err, out)
	}
	// The phone runs a minute late: still accepted, and the drift is shown.
	late, err := otp.TOTPCode(secret, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	w.cli(t, "user", "totp", "con", "--confirm", late)
	if show := squash(w.cli(t, "user", "show", "con")); !strings.Contains(show, "totp: active (phone clock -60s)") {
		t.Fatalf("got\n%s\nwant totp active with the drift", show)
	}
}

func TestAccountRecoveryCode(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "rob", "--tenant", "acme")
	w.cli(t, "user", "totp", "rob", "--secret", testSecret)
	out := w.cli(t, "user", "recovery-codes", "rob")
	codes := regexp.MustCompile(`\d{4}-\d{4}-\d{4}`).FindAllString(out, -1)
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10:\n%s", len(codes), out)
	}
	ch := w.login(t, "rob", "203.0.113.5")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	expect(t, w.answer(t, "rob", "203.0.113.5", codes[0], ch), radius.CodeAccessAccept,
		"Recovery code accepted. 9 left; ask your administrator for new ones.")
	// Spent: the second time it is a wrong code.
	ch = w.login(t, "rob", "203.0.113.7")
	expect(t, w.answer(t, "rob", "203.0.113.7", codes[0], ch), radius.CodeAccessChallenge, "Wrong code, 2 tries left")
	if show := squash(w.cli(t, "user", "show", "rob")); !strings.Contains(show, "recovery codes: 9 left") {
		t.Fatalf("got\n%s\nwant 9 recovery codes left", show)
	}
	// A new set voids the old one.
	w.cli(t, "user", "recovery-codes", "rob")
	w.cli(t, "user", "unlock", "rob")
	ch = w.login(t, "rob", "203.0.113.8")
	expect(t, w.answer(t, "rob", "203.0.113.8", codes[1], ch), radius.CodeAccessChallenge, "Wrong code, 2 tries left")
}

func TestAccountResetForcesEnrolment(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "res", "--tenant", "acme", "--phone", "0612345678", "--method", "totp")
	w.cli(t, "user", "totp", "res", "--secret", testSecret)
	ch := w.login(t, "res", "203.0.113.5")
	expect(t, w.answer(t, "res", "203.0.113.5", w.code(t, testSecret), ch), radius.CodeAccessAccept, "")
	expect(t, w.login(t, "res", "203.0.113.5"), radius.CodeAccessAccept, "Home IP Allowed!") // remembered

	out := w.cli(t, "user", "reset", "res")
	if !strings.Contains(out, "they enrol again at their next login") {
		t.Fatalf("got %q", out)
	}
	show := squash(w.cli(t, "user", "show", "res"))
	if !strings.Contains(show, "totp: not enrolled") || !strings.Contains(show, "remembered ips: none") || !strings.Contains(show, "method: none") {
		t.Fatalf("after reset got\n%s", show)
	}
	// The remembered IP no longer helps; enrolment sends a code to the
	// phone on file, and proving it makes SMS the method.
	ch = w.login(t, "res", "203.0.113.5")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	expect(t, w.answer(t, "res", "203.0.113.5", w.lastCode(t, "+31612345678"), ch), radius.CodeAccessAccept, "")
	if show := squash(w.cli(t, "user", "show", "res")); !strings.Contains(show, "method: sms") {
		t.Fatalf("after enrolment got\n%s\nwant method sms", show)
	}
}

func TestAccountLockoutAndUnlock(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "loc", "--tenant", "acme")
	w.cli(t, "user", "totp", "loc", "--secret", testSecret)
	wrong := wrongTOTPAt(t, w.clock.Now())
	ch := w.login(t, "loc", "203.0.113.5")
	ch = w.answer(t, "loc", "203.0.113.5", wrong, ch)
	expect(t, ch, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
	locked := "Your account is locked after too many wrong codes. Please try again later or contact your administrator."
	expect(t, w.answer(t, "loc", "203.0.113.5", wrong, ch), radius.CodeAccessReject, locked)
	// Locked even from the office, and across a restart.
	expect(t, w.login(t, "loc", "192.0.2.10"), radius.CodeAccessReject, locked)
	w.stop(t)
	w.start(t)
	expect(t, w.login(t, "loc", "192.0.2.10"), radius.CodeAccessReject, locked)
	if show := squash(w.cli(t, "user", "show", "loc")); !strings.Contains(show, "locked: until") {
		t.Fatalf("got\n%s\nwant locked", show)
	}
	if out := w.cli(t, "user", "unlock", "loc"); !strings.Contains(out, "unlocked user loc") {
		t.Fatalf("got %q", out)
	}
	expect(t, w.login(t, "loc", "192.0.2.10"), radius.CodeAccessAccept, "HQ IP Allowed!")
}

func TestAccountAskPhone(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "new", "--tenant", "acme")
	ch := w.login(t, "new", "203.0.113.5")
	expect(t, ch, radius.CodeAccessChallenge, "Enter your mobile number to receive a login code")
	ch = w.answer(t, "new", "203.0.113.5", "06 12", ch)
	expect(t, ch, radius.CodeAccessChallenge, "That is not a mobile number; enter it like +31612345678. Enter your mobile number to receive a login code")
	ch = w.answer(t, "new", "203.0.113.5", "06 1234 5678", ch)
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	expect(t, w.answer(t, "new", "203.0.113.5", w.lastCode(t, "+31612345678"), ch), radius.CodeAccessAccept, "")
	show := squash(w.cli(t, "user", "show", "new"))
	if !strings.Contains(show, "phone: +31612345678") || !strings.Contains(show, "method: sms") {
		t.Fatalf("got\n%s\nwant the proved number saved as the SMS method", show)
	}
}

func TestAccountRememberedIPExpires(t *testing.T) {
	w := startAccount(t)
	w.cli(t, "user", "add", "rem", "--tenant", "acme")
	w.cli(t, "user", "totp", "rem", "--secret", testSecret)
	ch := w.login(t, "rem", "203.0.113.5")
	expect(t, w.answer(t, "rem", "203.0.113.5", w.code(t, testSecret), ch), radius.CodeAccessAccept, "")
	expect(t, w.login(t, "rem", "203.0.113.5"), radius.CodeAccessAccept, "Home IP Allowed!")
	if show := squash(w.cli(t, "user", "show", "rem")); !strings.Contains(show, "remembered ips: 203.0.113.5 until") {
		t.Fatalf("got\n%s\nwant the remembered IP listed", show)
	}
	expect(t, w.login(t, "rem", "203.0.113.6"), radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	w.clock.Advance(time.Hour)
	expect(t, w.login(t, "rem", "203.0.113.5"), radius.CodeAccessChallenge, "Enter the code from your authenticator app")
}

// wrongTOTPAt is a six-digit code that no step near at accepts.
func wrongTOTPAt(t *testing.T, at time.Time) string {
	t.Helper()
	for n := 0; n < 1000; n++ {
		c := fmt.Sprintf("%06d", n)
		if _, ok := otp.MatchTOTPNear(testSecret, c, at, 0, otp.MaxDrift); !ok {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}
