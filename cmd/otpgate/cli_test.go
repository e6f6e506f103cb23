package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const cliConfig = `
radius: {listen: ["127.0.0.1:0"]}
http: {listen: "127.0.0.1:0"}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme}
tenants:
  - {name: acme, methods: [totp, sms, email]}
  - {name: other, methods: [totp]}
  - {name: nl, methods: [totp, sms, voice], country_code: "31"}
`

// cliRun runs the CLI through run() and returns its output and exit status.
func cliRun(t *testing.T, config string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(args, "--config", config), strings.NewReader(stdin), &out, &errOut)
	status := exitCode(err, &errOut)
	return out.String(), errOut.String(), status
}

func writeConfig(t *testing.T, config string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "otpgate.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "{{dir}}", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestCLIWithoutServer runs the user commands against the store directly.
func TestCLIWithoutServer(t *testing.T) {
	dir, cfg := writeConfig(t, cliConfig)
	steps := []struct {
		args   []string
		stdin  string
		status int
		out    string // expected in stdout+stderr
	}{
		{[]string{"user", "add", "Alice", "--tenant", "acme", "--phone", "0031 6-1234 5678", "--email", "alice@example.com", "--home-ip", "198.51.100.7"}, "", 0, "added user alice (tenant acme)"},
		{[]string{"user", "add", "alice", "--tenant", "acme"}, "", 1, "user alice exists; change it with: otpgate user set alice"},
		{[]string{"user", "add", "bob"}, "", 2, "say which tenant: otpgate user add bob --tenant NAME (one of acme, other, nl)"},
		{[]string{"user", "add", "bob", "--tenant", "nope"}, "", 2, `--tenant "nope": no such tenant; configured: acme, other, nl`},
		{[]string{"user", "add", "bob", "--tenant", "acme", "--phone", "0612345678"}, "", 2, `--phone: "0612345678" has no country code: give the number with its country code, like +31612345678`},
		{[]string{"user", "add", "bob", "--tenant", "acme", "--phone", "+31 6 12"}, "", 2, "is too short: a phone number has 7 to 15 digits"},
		{[]string{"user", "add", "nora", "--tenant", "nl", "--phone", "06-87654321", "--method", "voice", "--backup-method", "sms"}, "", 0, "added user nora"},
		{[]string{"user", "show", "nora"}, "", 0, "phone: +31687654321"},
		{[]string{"user", "show", "nora"}, "", 0, "backup method: sms"},
		{[]string{"user", "set", "nora", "--backup-method", "voice"}, "", 2, "--backup-method voice: that is the primary method already"},
		{[]string{"user", "set", "nora", "--backup-method", "email"}, "", 2, "--backup-method email: tenant nl allows totp, sms, voice"},
		{[]string{"user", "set", "nora", "--backup-method", "pigeon"}, "", 2, `--backup-method "pigeon": want one of totp, sms, email, voice`},
		{[]string{"user", "set", "nora", "--backup-method", "none"}, "", 0, "updated user nora"},
		{[]string{"user", "show", "nora"}, "", 0, "backup method: none"},
		{[]string{"user", "add", "bob", "--tenant", "other", "--method", "sms"}, "", 2, "--method sms: tenant other allows totp"},
		{[]string{"user", "add", "bob", "--tenant", "acme", "--password-stdin"}, "hunter2\n", 0, "added user bob"},
		{[]string{"user", "show", "ALICE"}, "", 0, "+31612345678"},
		{[]string{"user", "show", "alice"}, "", 0, "198.51.100.7"},
		{[]string{"user", "show", "bob"}, "", 0, "set (local)"},
		{[]string{"user", "set", "alice", "--2fa", "off", "--clear-home-ips", "--home-ip", "203.0.113.0/29"}, "", 0, "updated user alice"},
		{[]string{"user", "show", "alice"}, "", 0, "203.0.113.0/29"},
		{[]string{"user", "set", "alice", "--2fa", "maybe"}, "", 2, `--2fa "maybe": want on, off or tenant`},
		{[]string{"user", "set", "zed", "--2fa", "on"}, "", 1, "no user zed; add one with: otpgate user add zed"},
		{[]string{"user", "totp", "alice", "--secret", "not base32!"}, "", 2, "--secret: secret is not base32"},
		{[]string{"user", "totp", "alice", "--secret", testSecret, "--png", filepath.Join(dir, "alice.png")}, "", 0, "otpauth://totp/otpgate:alice?"},
		{[]string{"user", "list"}, "", 0, "alice acme totp"},
		{[]string{"user", "recovery-codes", "alice"}, "", 0, "they are not shown again"},
		{[]string{"user", "show", "alice"}, "", 0, "recovery codes: 10 left"},
		{[]string{"user", "totp", "alice", "--confirm", "123456"}, "", 2, "alice is not linking an authenticator app; start with: otpgate user totp alice"},
		{[]string{"user", "unlock", "alice"}, "", 0, "user alice was not locked"},
		{[]string{"user", "reset", "alice"}, "", 0, "reset user alice"},
		{[]string{"user", "show", "alice"}, "", 0, "totp: not enrolled"},
		{[]string{"user", "show", "alice"}, "", 0, "recovery codes: 0 left"},
		{[]string{"user", "reset", "nobody"}, "", 1, "no user nobody; add one with: otpgate user add nobody"},
		{[]string{"user", "totp", "alice"}, "", 0, "otpgate user totp alice --confirm CODE"},
		{[]string{"user", "show", "alice"}, "", 0, "totp: pending"},
		{[]string{"user", "delete", "bob"}, "", 0, "deleted user bob"},
		{[]string{"user", "delete", "bob"}, "", 1, "no user bob"},
		{[]string{"user", "frobnicate"}, "", 2, `unknown user command "frobnicate"`},
		{[]string{"user", "show"}, "", 2, "needs a user name, for example: otpgate user show alice"},
		{[]string{"audit", "--limit", "-1"}, "", 2, "--limit -1: want 0 (all) or more"},
		{[]string{"frobnicate"}, "", 2, `unknown command "frobnicate"; run otpgate help`},
	}
	for _, st := range steps {
		out, errOut, status := cliRun(t, cfg, st.stdin, st.args...)
		if status != st.status || !strings.Contains(squash(out+errOut), st.out) {
			t.Errorf("otpgate %s: got status %d and\n%s%s\nwant status %d and %q", strings.Join(st.args, " "), status, out, errOut, st.status, st.out)
		}
	}
	// The PNG is a real image and the secret is not in the store in clear.
	f, err := os.Open(filepath.Join(dir, "alice.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("alice.png is not a QR image: %v", err)
	}
	db, _ := os.ReadFile(filepath.Join(dir, "otpgate.db"))
	if bytes.Contains(db, []byte(testSecret)) || bytes.Contains(db, []byte("hunter2")) {
		t.Errorf("the store holds a TOTP secret or a password in clear")
	}
}

// TestCLIWhileServing runs the same commands through the admin socket
// while the server holds the store.
func TestCLIWhileServing(t *testing.T) {
	s := startServer(t, cliConfig)
	out := s.cli(t, "user", "add", "carol", "--tenant", "acme", "--email", "carol@example.com")
	if !strings.Contains(out, "added user carol") {
		t.Fatalf("got %q", out)
	}
	// The server logs the command with its outcome as it answers: wait for
	// the line to come through the log pipe.
	s.waitLog(t, 0, `msg="admin command" op="user add" user=carol`)
	if out := s.cli(t, "user", "show", "carol"); !strings.Contains(squash(out), "method: email") {
		t.Errorf("got %q, want method email", out)
	}
	if out, err := s.cliErr("user", "show", "nobody"); exitCode(err, &bytes.Buffer{}) != 1 || !strings.Contains(err.Error(), "no user nobody") {
		t.Errorf("got %v %q, want a failure (exit 1)", err, out)
	}
	// The account commands go the same way.
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "recovery-codes", "carol"}, "they are not shown again"},
		{[]string{"user", "totp", "carol"}, "--confirm CODE"},
		{[]string{"user", "unlock", "carol"}, "user carol was not locked"},
		{[]string{"user", "reset", "carol"}, "reset user carol"},
		{[]string{"user", "show", "carol"}, "recovery codes: 0 left"},
	} {
		if out := squash(s.cli(t, st.args...)); !strings.Contains(out, st.want) {
			t.Errorf("otpgate %s: got\n%s\nwant %q", strings.Join(st.args, " "), out, st.want)
		}
	}
	s.waitLog(t, 0, `op="user reset" user=carol`)
}

// TestKillDashNine enrols a user through a running server, kills it with
// SIGKILL, and checks that the enrolment survived and that both the CLI
// and a new server cope with the socket left behind.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "otpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir, cfg := writeConfig(t, cliConfig)
	startBin := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfg)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "otpgate ready") {
				go func() {
					for sc.Scan() {
					}
				}()
				return cmd
			}
		}
		cmd.Wait()
		t.Fatalf("server did not start")
		return nil
	}
	cli := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, "--config", cfg)...).CombinedOutput()
		if err != nil {
			t.Fatalf("otpgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	srv := startBin()
	cli("user", "add", "dora", "--tenant", "acme")
	cli("user", "totp", "dora", "--secret", testSecret)
	cli("user", "recovery-codes", "dora")
	cli("user", "add", "ed", "--tenant", "acme")
	cli("user", "totp", "ed") // a pending secret
	srv.Process.Signal(syscall.SIGKILL)
	var exit *exec.ExitError
	if err := srv.Wait(); !errors.As(err, &exit) {
		t.Fatalf("server did not die: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "otpgate.db.sock")); err != nil {
		t.Fatalf("expected the killed server's socket to be left behind: %v", err)
	}
	if out := squash(cli("user", "show", "dora")); !strings.Contains(out, "totp: active") || !strings.Contains(out, "recovery codes: 10 left") {
		t.Fatalf("enrolment lost after kill -9:\n%s", out)
	}
	if out := squash(cli("user", "show", "ed")); !strings.Contains(out, "totp: pending") {
		t.Fatalf("pending enrolment lost after kill -9:\n%s", out)
	}
	srv = startBin()
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	if out := cli("user", "show", "dora"); !strings.Contains(squash(out), "totp: active") {
		t.Fatalf("enrolment not visible through the restarted server:\n%s", out)
	}
}

// squash joins runs of spaces, so tests need not know column widths.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
