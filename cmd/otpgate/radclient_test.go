package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// radclient runs FreeRADIUS's radclient with the given attribute lines
// and returns what it printed. In CI radclient must be there; elsewhere
// the test is skipped without it.
func radclient(t *testing.T, addr string, attrs ...string) string {
	t.Helper()
	return radclientCmd(t, addr, "auth", attrs...)
}

// radclientCmd is radclient with a command: auth, acct or status.
func radclientCmd(t *testing.T, addr, command string, attrs ...string) string {
	t.Helper()
	path, err := exec.LookPath("radclient")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("radclient is not installed; .ci/run installs freeradius-utils")
		}
		t.Skip("radclient not installed (apt-get install freeradius-utils)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-x", "-r", "1", "-t", "3", addr, command, "testing123")
	cmd.Stdin = strings.NewReader(strings.Join(attrs, "\n") + "\n")
	out, _ := cmd.CombinedOutput() // radclient exits 1 on anything but Accept
	return string(out)
}

var (
	receivedRE = regexp.MustCompile(`Received (Access-\w+|Accounting-Response) Id`)
	stateRE    = regexp.MustCompile(`State = 0x([0-9a-f]+)`)
)

func received(t *testing.T, out string) string {
	t.Helper()
	m := receivedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("radclient got no answer:\n%s", out)
	}
	return m[1]
}

// TestRadclient drives the server with a RADIUS client we did not write:
// Message-Authenticator required, an office IP, the two-round TOTP flow
// and Proxy-State.
func TestRadclient(t *testing.T) {
	s := startServer(t, e2eConfig)
	s.cli(t, "user", "add", "lena", "--tenant", "acme")
	s.cli(t, "user", "totp", "lena", "--secret", testSecret)
	addr := s.addrs[0]

	out := radclient(t, addr, `User-Name = "lena"`, `User-Password = "pw"`,
		`Calling-Station-Id = "192.0.2.10"`, `Message-Authenticator = 0x00`, `Proxy-State = 0x6e7073`)
	if got := received(t, out); got != "Access-Accept" {
		t.Fatalf("office IP: got %s, want Access-Accept:\n%s", got, out)
	}
	for _, want := range []string{`Reply-Message = "HQ IP Allowed!"`, `Proxy-State = 0x6e7073`, `Message-Authenticator = 0x`} {
		if !strings.Contains(out, want) {
			t.Errorf("office IP: answer lacks %s:\n%s", want, out)
		}
	}

	out = radclient(t, addr, `User-Name = "lena"`, `User-Password = "pw"`,
		`Calling-Station-Id = "203.0.113.50"`, `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Challenge" {
		t.Fatalf("unknown IP: got %s, want Access-Challenge:\n%s", got, out)
	}
	m := stateRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("challenge without State:\n%s", out)
	}
	out = radclient(t, addr, `User-Name = "lena"`, `User-Password = "`+totpNow(t)+`"`, `State = 0x`+m[1],
		`Calling-Station-Id = "203.0.113.50"`, `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Accept" {
		t.Fatalf("TOTP answer: got %s, want Access-Accept:\n%s", got, out)
	}

	// Without Message-Authenticator the server stays silent.
	out = radclient(t, addr, `User-Name = "lena"`, `User-Password = "pw"`, `Calling-Station-Id = "192.0.2.10"`)
	if receivedRE.MatchString(out) {
		t.Fatalf("request without Message-Authenticator was answered:\n%s", out)
	}
}

// TestRadclientStatusAndAccounting: a health check (Status-Server) on the
// authentication port, and accounting on its own listener, acknowledged
// and recorded in the audit log.
func TestRadclientStatusAndAccounting(t *testing.T) {
	s := startServer(t, strings.Replace(e2eConfig, `radius: {listen: ["127.0.0.1:0"]}`,
		`radius: {listen: ["127.0.0.1:0"], accounting_listen: ["127.0.0.1:0"]}`, 1))
	out := radclientCmd(t, s.addrs[0], "status", `Message-Authenticator = 0x00`)
	if got := received(t, out); got != "Access-Accept" {
		t.Fatalf("Status-Server: got %s, want Access-Accept:\n%s", got, out)
	}
	for _, status := range []string{"Start", "Stop"} {
		out = radclientCmd(t, s.acct, "acct", `User-Name = "lena"`, `Acct-Status-Type = `+status,
			`Acct-Session-Id = "sess-42"`, `Calling-Station-Id = "203.0.113.50"`)
		if got := received(t, out); got != "Accounting-Response" {
			t.Fatalf("Accounting-Request %s: got %s, want Accounting-Response:\n%s", status, got, out)
		}
	}
	audit := s.cli(t, "audit", "--json", "--user", "lena")
	for _, want := range []string{`"reason":"session_start"`, `"reason":"session_stop"`, `"session":"sess-42"`, `"ip":"203.0.113.50"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}
