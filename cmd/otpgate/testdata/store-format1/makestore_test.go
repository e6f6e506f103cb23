package main

// This file is not built with otpgate: make.sh copies it into a checkout of
// the build whose store it records (format 1: commit 62e4c0e) and runs it
// there, so that the store is written by that build's own run(), over real
// UDP, under a fixed clock. TestUpgrade (upgrade_test.go) then opens the
// store with today's build, at the same clock, and logs in with it.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
)

// storeFacts is what the test needs to know of the store: written to
// facts.json beside it.
type storeFacts struct {
	// Now is the server's clock when the store was closed.
	Now time.Time `json:"now"`
	// Secret is the TOTP secret imported for every active TOTP user.
	Secret string `json:"totp_secret"`
	// Pending is pat's secret, not yet proved.
	Pending string `json:"pending_secret"`
	// Recovery is rec's ten recovery codes; the first is spent.
	Recovery []string `json:"recovery_codes"`
	// TomCode is the code tom proved last, at Now.
	TomCode string `json:"tom_code"`
	// Show, List, Export and Audit are what the CLI printed at Now:
	// "user show" per user, "user list", "user export --with-secrets" and
	// "audit --json --limit 0".
	Show   map[string]string `json:"show"`
	List   string            `json:"list"`
	Export string            `json:"export"`
	Audit  string            `json:"audit"`
}

func TestMakeStore(t *testing.T) {
	out := os.Getenv("OTPGATE_MAKE_STORE")
	if out == "" {
		t.Skip("set OTPGATE_MAKE_STORE=DIR to write a store into DIR (see make.sh)")
	}
	config, err := os.ReadFile(filepath.Join(out, "otpgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	s := startServerAt(t, string(config), c.Now)
	f := storeFacts{Secret: testSecret, Show: map[string]string{}}
	send := func(user, password, ip, state, from string) *radius.Packet {
		t.Helper()
		return mustExchange(t, s.addrs[0], request{user: user, password: password, callingStation: ip, state: state, from: from})
	}
	login := func(user, ip string) *radius.Packet { t.Helper(); return send(user, "pw", ip, "", "") }
	answer := func(user, ip, text string, ch *radius.Packet) *radius.Packet {
		t.Helper()
		return send(user, text, ip, string(rfc2865.State_Get(ch)), "")
	}
	code := func() string {
		t.Helper()
		code, err := otp.TOTPCode(testSecret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	totpUser := func(name string, args ...string) {
		t.Helper()
		s.cli(t, append([]string{"user", "add", name}, args...)...)
		s.cli(t, "user", "totp", name, "--secret", testSecret)
	}

	// sam: SMS, e-mail as backup; one code sent and proved (a send
	// counted, an IP remembered).
	s.cli(t, "user", "add", "sam", "--tenant", "acme", "--phone", "+31612345678", "--email", "sam@example.com",
		"--method", "sms", "--backup-method", "email")
	ch := login("sam", "203.0.113.10")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code sent to +31 6*****78 (or type resend)")
	expect(t, answer("sam", "203.0.113.10", s.lastCode(t, "+31612345678"), ch), radius.CodeAccessAccept, "")
	c.Advance(time.Minute)

	// emma: e-mail; vic: voice.
	s.cli(t, "user", "add", "emma", "--tenant", "acme", "--email", "emma@example.com")
	s.cli(t, "user", "add", "vic", "--tenant", "acme", "--phone", "+31612345679", "--method", "voice")

	// hal: home IPs, one an address and one a network.
	totpUser("hal", "--tenant", "acme", "--home-ip", "198.51.100.7", "--home-ip", "198.51.100.64/26")
	expect(t, login("hal", "198.51.100.7"), radius.CodeAccessAccept, "Home IP Allowed!")
	c.Advance(time.Minute)

	// pat: a TOTP secret pending, not yet proved.
	s.cli(t, "user", "add", "pat", "--tenant", "acme")
	f.Pending = secretOf(t, s.cli(t, "user", "totp", "pat"))

	// rec: recovery codes, the first spent.
	totpUser("rec", "--tenant", "acme")
	f.Recovery = regexp.MustCompile(`\d{4}-\d{4}-\d{4}`).FindAllString(s.cli(t, "user", "recovery-codes", "rec"), -1)
	if len(f.Recovery) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(f.Recovery))
	}
	ch = login("rec", "203.0.113.30")
	expect(t, answer("rec", "203.0.113.30", f.Recovery[0], ch), radius.CodeAccessAccept,
		"Recovery code accepted. 9 left; ask your administrator for new ones.")
	c.Advance(time.Minute)

	// lou: locked out by two wrong codes, for 720h.
	totpUser("lou", "--tenant", "acme")
	ch = login("lou", "203.0.113.50")
	ch = answer("lou", "203.0.113.50", wrongTOTPAt(t, c.Now()), ch)
	expect(t, ch, radius.CodeAccessChallenge, "Wrong code, 2 tries left")
	expect(t, answer("lou", "203.0.113.50", wrongTOTPAt(t, c.Now()), ch), radius.CodeAccessReject,
		"Your account is locked after too many wrong codes. Please try again later or contact your administrator.")
	c.Advance(time.Minute)

	// lola: a local password, for the vpn client (127.0.0.2).
	var cliOut, cliErr strings.Builder
	if err := run(t.Context(), []string{"user", "add", "lola", "--tenant", "acme", "--password-stdin", "--config", s.config},
		strings.NewReader("hunter2\n"), &cliOut, &cliErr); err != nil {
		t.Fatalf("user add lola: %v %s", err, cliErr.String())
	}
	s.cli(t, "user", "totp", "lola", "--secret", testSecret)
	expect(t, send("lola", "hunter2", "192.0.2.5", "", "127.0.0.2"), radius.CodeAccessAccept, "HQ IP Allowed!")
	c.Advance(time.Minute)

	// otto: second factor off.
	s.cli(t, "user", "add", "otto", "--tenant", "acme")
	s.cli(t, "user", "set", "otto", "--2fa", "off")
	expect(t, login("otto", "203.0.113.77"), radius.CodeAccessAccept, "")
	c.Advance(time.Minute)

	// tina: the second tenant, whose reconnect window keeps the (user, IP)
	// pair she proved a code from.
	totpUser("tina", "--tenant", "beta")
	ch = login("tina", "203.0.113.40")
	expect(t, answer("tina", "203.0.113.40", code(), ch), radius.CodeAccessAccept, "")
	c.Advance(time.Minute)

	// tom: TOTP, proved last, so that his step is the newest used when the
	// store is closed; in the second tenant, where nothing else changes his
	// record, so that the step is kept only in the store's list of steps.
	totpUser("tom", "--tenant", "beta")
	ch = login("tom", "203.0.113.20")
	f.TomCode = code()
	expect(t, answer("tom", "203.0.113.20", f.TomCode, ch), radius.CodeAccessAccept, "")

	f.Now = c.Now()
	for _, name := range []string{"sam", "emma", "vic", "hal", "pat", "rec", "lou", "lola", "otto", "tina", "tom"} {
		f.Show[name] = s.cli(t, "user", "show", name)
	}
	f.List = s.cli(t, "user", "list")
	f.Export = s.cli(t, "user", "export", "--with-secrets")
	f.Audit = s.cli(t, "audit", "--json", "--limit", "0")
	s.stop(t)

	for _, name := range []string{"otpgate.db", "otpgate.db.key"} {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "facts.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
