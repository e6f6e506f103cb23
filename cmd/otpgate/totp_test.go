package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/otp"
)

const clockOff = "Your phone's clock seems off; enter the next code from your authenticator app"

// phoneCode is the code of testSecret on a phone whose clock is off by
// the given number of steps from the server's.
func (w *accountWorld) phoneCode(t *testing.T, off int) string {
	t.Helper()
	c, err := otp.TOTPCode(testSecret, w.clock.Now().Add(time.Duration(off)*otp.Period))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPWindowThroughRADIUS(t *testing.T) {
	// An attacker's guess is tried against three steps, not nine: on fresh
	// users, only the codes of the steps one either side of now are
	// accepted; those further out, up to two minutes, ask for the next code.
	w := startAccount(t)
	for off := -otp.MaxDrift; off <= otp.MaxDrift; off++ {
		name := fmt.Sprintf("w%d", off+otp.MaxDrift)
		w.cli(t, "user", "add", name, "--tenant", "acme")
		w.cli(t, "user", "totp", name, "--secret", testSecret)
		ip := fmt.Sprintf("203.0.113.%d", 100+off+otp.MaxDrift)
		ch := w.login(t, name, ip)
		expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
		got := w.answer(t, name, ip, w.phoneCode(t, off), ch)
		if off >= -1 && off <= 1 {
			expect(t, got, radius.CodeAccessAccept, "")
		} else {
			expect(t, got, radius.CodeAccessChallenge, clockOff)
		}
	}
}

func TestTOTPResyncThroughRADIUS(t *testing.T) {
	// A phone 90 seconds ahead: its code and the next one learn the drift,
	// and then its codes work in each following step.
	w := startAccount(t)
	w.cli(t, "user", "add", "ria", "--tenant", "acme")
	w.cli(t, "user", "totp", "ria", "--secret", testSecret)
	ch := w.login(t, "ria", "203.0.113.10")
	far := w.answer(t, "ria", "203.0.113.10", w.phoneCode(t, 3), ch)
	expect(t, far, radius.CodeAccessChallenge, clockOff)
	w.clock.Advance(otp.Period)
	expect(t, w.answer(t, "ria", "203.0.113.10", w.phoneCode(t, 3), far), radius.CodeAccessAccept, "")
	if show := squash(w.cli(t, "user", "show", "ria")); !strings.Contains(show, "phone clock +90s") {
		t.Fatalf("got\n%s\nwant the drift learned", show)
	}
	for i := range 5 {
		w.clock.Advance(otp.Period)
		ip := fmt.Sprintf("203.0.113.%d", 20+i)
		ch := w.login(t, "ria", ip)
		expect(t, w.answer(t, "ria", ip, w.phoneCode(t, 3), ch), radius.CodeAccessAccept, "")
	}
	// The phone's clock is put right: its codes are now far from the
	// drift learned, and two in a row learn it again.
	w.clock.Advance(5 * otp.Period)
	ch = w.login(t, "ria", "203.0.113.30")
	far = w.answer(t, "ria", "203.0.113.30", w.phoneCode(t, 0), ch)
	expect(t, far, radius.CodeAccessChallenge, clockOff)
	w.clock.Advance(otp.Period)
	expect(t, w.answer(t, "ria", "203.0.113.30", w.phoneCode(t, 0), far), radius.CodeAccessAccept, "")
}

func TestTOTPFarCodeAloneThroughRADIUS(t *testing.T) {
	// A code 90 seconds ahead that nothing follows is not a login, and
	// leaves the user's current codes working in the following steps
	// (they were refused as replays for minutes once such a code was
	// accepted alone).
	// The one exception is the code of that step itself, told to be a
	// code: it is refused when its step comes (see
	// TestTOTPFarCodeNotAcceptedWhenItsStepComes), and the next works.
	w := startAccount(t)
	w.cli(t, "user", "add", "fay", "--tenant", "acme")
	w.cli(t, "user", "totp", "fay", "--secret", testSecret)
	ch := w.login(t, "fay", "203.0.113.10")
	expect(t, w.answer(t, "fay", "203.0.113.10", w.phoneCode(t, 3), ch), radius.CodeAccessChallenge, clockOff)
	for i := range 5 {
		ip := fmt.Sprintf("203.0.113.%d", 20+i)
		ch := w.login(t, "fay", ip)
		if i == 3 {
			expect(t, w.answer(t, "fay", ip, w.phoneCode(t, 0), ch), radius.CodeAccessChallenge, "Wrong code, 2 tries left")
		} else {
			expect(t, w.answer(t, "fay", ip, w.phoneCode(t, 0), ch), radius.CodeAccessAccept, "")
		}
		w.clock.Advance(otp.Period)
	}
}

func TestTOTPFarCodeNotAcceptedWhenItsStepComes(t *testing.T) {
	// A guess that is the code of a step ahead is told so ("clock seems
	// off"), which no wrong guess is. Were that code accepted once its step
	// came near, each guess would be tried against six codes, not three:
	// the three near and, for a later try, the three ahead.
	w := startAccount(t)
	for off := 2; off <= otp.MaxDrift; off++ {
		name := fmt.Sprintf("gus%d", off)
		w.cli(t, "user", "add", name, "--tenant", "acme")
		w.cli(t, "user", "totp", name, "--secret", testSecret)
		guess := w.phoneCode(t, off)
		ip := fmt.Sprintf("203.0.113.%d", 40+off)
		expect(t, w.answer(t, name, ip, guess, w.login(t, name, ip)), radius.CodeAccessChallenge, clockOff)
		w.clock.Advance(time.Duration(off) * otp.Period)
		ip = fmt.Sprintf("203.0.113.%d", 50+off)
		if got := w.answer(t, name, ip, guess, w.login(t, name, ip)); got.Code == radius.CodeAccessAccept {
			t.Errorf("the code of the step %d ahead, found far and told so, was accepted %d steps later", off, off)
		}
	}
}

func TestTOTPResyncAppendedToThePassword(t *testing.T) {
	// A gateway that takes the code after the password: a code too far out
	// is refused with the reason, and the next login with the next code
	// learns the drift. (The gateway checks the password here, so that no
	// bcrypt slows the test down.)
	c := newClock()
	s := startServerAt(t, `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: vpn, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     otp_in_password: append, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, methods: [totp], reconnect_window: 0s}
`, c.Now)
	s.cli(t, "user", "add", "tom", "--tenant", "acme")
	s.cli(t, "user", "totp", "tom", "--secret", testSecret)
	phone := func() string {
		code, err := otp.TOTPCode(testSecret, c.Now().Add(-2*otp.Period))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	login := func(ip string) *radius.Packet {
		return mustExchange(t, s.addrs[0], request{user: "tom", password: "hunter2" + phone(), callingStation: ip})
	}
	expect(t, login("203.0.113.5"), radius.CodeAccessReject, clockOff)
	c.Advance(otp.Period)
	expect(t, login("203.0.113.5"), radius.CodeAccessAccept, "")
	c.Advance(otp.Period)
	expect(t, login("203.0.113.6"), radius.CodeAccessAccept, "")
}
