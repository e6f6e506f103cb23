package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func TestReload(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "rey", "--tenant", "acme")
	s.cli(t, "user", "totp", "rey", "--secret", testSecret)
	addr := s.addrs[0]
	login := func(ip string) *radius.Packet {
		t.Helper()
		return mustExchange(t, addr, request{user: "rey", password: "pw", callingStation: ip})
	}
	// A challenge started before the reload is answered after it.
	ch := login("203.0.113.5")
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	expect(t, login("198.51.100.5"), radius.CodeAccessChallenge, "")

	config, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	write := func(c string) {
		t.Helper()
		if err := os.WriteFile(s.config, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A bad file changes nothing and says exactly why.
	write(strings.Replace(string(config), "max_attempts: 3", "max_attempts: 99", 1))
	if _, err := s.cliErr("reload"); err == nil || !strings.Contains(err.Error(), "tenants[0] (acme).max_attempts: 99 is out of range") ||
		!strings.Contains(err.Error(), "the running configuration stays") {
		t.Fatalf("reload of a bad file: got %v", err)
	}
	expect(t, login("198.51.100.5"), radius.CodeAccessChallenge, "")
	// The CLI found that before asking the server; by SIGHUP the server
	// finds it.
	mark := s.logLen()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, mark, "reload failed; the running configuration stays")

	// A new office network, by otpgate reload.
	write(strings.Replace(string(config), "office_networks: [192.0.2.0/24]", "office_networks: [192.0.2.0/24, 198.51.100.0/24]", 1))
	if out := s.cli(t, "reload"); !strings.Contains(out, "reloaded") {
		t.Fatalf("got %q", out)
	}
	expect(t, login("198.51.100.5"), radius.CodeAccessAccept, "HQ IP Allowed!")
	expect(t, mustExchange(t, addr, request{user: "rey", password: totpNow(t), callingStation: "203.0.113.5", state: string(rfc2865.State_Get(ch))}),
		radius.CodeAccessAccept, "")

	// A new text, by SIGHUP, as systemctl reload sends.
	write(strings.Replace(string(config), "office_networks: [192.0.2.0/24]", "office_networks: [192.0.2.0/24, 198.51.100.0/24], messages: {office_ip: \"Welcome at the office\"}", 1))
	mark = s.logLen()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, mark, "SIGHUP: reloaded")
	expect(t, login("198.51.100.5"), radius.CodeAccessAccept, "Welcome at the office")

	// Each reload is in the audit log: who asked, and whether it took.
	var acts []string
	for _, l := range strings.Split(squash(s.cli(t, "audit", "--limit", "0")), "\n") {
		if _, act, ok := strings.Cut(l, " - - - admin "); ok && strings.Contains(act, "reload") {
			acts = append(acts, act)
		}
	}
	want := []string{"failed reload via sighup: reload failed; the running configuration stays: config " + s.config + ": tenants[0] (acme).max_attempts: 99 is out of range",
		"ok reload by " + me(t) + " via admin socket", "ok reload via sighup"}
	if len(acts) != len(want) {
		t.Fatalf("got reloads %q, want %q", acts, want)
	}
	for i := range want {
		if !strings.HasPrefix(acts[i], want[i]) {
			t.Errorf("got %q, want %q", acts[i], want[i])
		}
	}
}

func TestReloadWithoutServer(t *testing.T) {
	_, cfg := writeConfig(t, cliConfig)
	_, errOut, status := cliRun(t, cfg, "", "reload")
	if status != 2 || !strings.Contains(errOut, "nothing to reload") {
		t.Errorf("got %d %q", status, errOut)
	}
}

// TestReloadAuditKeep: a reload that shortens audit.keep takes effect at
// once, without a restart: the next audit entries written take those past
// it with them.
func TestReloadAuditKeep(t *testing.T) {
	c := newClock()
	s := startServerAt(t, e2eConfig, c.Now)
	s.cli(t, "user", "add", "rey", "--tenant", "acme")
	s.cli(t, "user", "totp", "rey", "--secret", testSecret)
	office := func() {
		t.Helper()
		expect(t, mustExchange(t, s.addrs[0], request{user: "rey", password: "pw", callingStation: "192.0.2.10"}), radius.CodeAccessAccept, "")
	}
	logins := func() int {
		t.Helper()
		return strings.Count(s.cli(t, "audit", "--user", "rey", "--limit", "0"), "accept")
	}
	for range 3 {
		office()
	}
	if n := logins(); n != 3 {
		t.Fatalf("got %d logins in the audit log, want 3", n)
	}
	config, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.config, append(config, "audit: {keep: 1h}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cli(t, "reload")
	c.Advance(2 * time.Hour)
	office()
	if n := logins(); n != 1 {
		t.Errorf("got %d logins in the audit log two hours on, with audit.keep reloaded to 1h; want only the last", n)
	}
}
