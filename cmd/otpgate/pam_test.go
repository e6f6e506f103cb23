package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pamLogin runs pamtester for user through a PAM service that uses
// pam_radius_auth against otpgate, typing the lines of stdin at its
// prompts, and returns what it printed and whether it authenticated.
func pamLogin(t *testing.T, service, user, rhost, stdin string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pamtester", "-v", "-I", "rhost="+rhost, service, user, "authenticate")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// pamService installs a PAM service for the test (PAM reads services only
// from /etc/pam.d) and removes it at the end.
func pamService(t *testing.T, radiusAddr string) string {
	t.Helper()
	if _, err := exec.LookPath("pamtester"); err != nil || !exists("/lib/x86_64-linux-gnu/security/pam_radius_auth.so") && !exists("/usr/lib/x86_64-linux-gnu/security/pam_radius_auth.so") {
		if os.Getenv("CI") != "" {
			t.Fatal("pamtester or pam_radius_auth is missing; .ci/run installs pamtester and libpam-radius-auth")
		}
		t.Skip("pamtester or pam_radius_auth missing (apt-get install pamtester libpam-radius-auth)")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a PAM service needs root")
	}
	conf := filepath.Join(t.TempDir(), "pam_radius_auth.conf")
	if err := os.WriteFile(conf, []byte(radiusAddr+" testing123 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "otpgate-test-" + hex.EncodeToString(b)
	service := filepath.Join("/etc/pam.d", name)
	if err := os.WriteFile(service, []byte(fmt.Sprintf("auth required pam_radius_auth.so conf=%s\naccount required pam_permit.so\n", conf)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(service) })
	return name
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestPAMRadius logs in through Linux PAM (pam_radius_auth, as sshd would)
// with pamtester answering the prompts: the password, then the code the
// challenge asks for.
func TestPAMRadius(t *testing.T) {
	s := startServer(t, `
radius: {listen: ["127.0.0.1:0"]}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: ssh, address: 127.0.0.1/32, secret: testing123, tenant: acme,
     require_message_authenticator: false, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp], max_attempts: 1}
`)
	service := pamService(t, s.addrs[0])
	s.cli(t, "user", "add", "pat", "--tenant", "acme")
	s.cli(t, "user", "totp", "pat", "--secret", testSecret)

	out, ok := pamLogin(t, service, "pat", "192.0.2.7", "password\n")
	if !ok {
		t.Fatalf("from the office: not authenticated:\n%s", out)
	}
	out, ok = pamLogin(t, service, "pat", "203.0.113.7", "password\n"+totpNow(t)+"\n")
	if !ok || !strings.Contains(out, "Enter the code from your authenticator app") {
		t.Fatalf("with the code at the prompt: got ok=%v:\n%s", ok, out)
	}
	out, ok = pamLogin(t, service, "pat", "203.0.113.8", "password\n"+wrongTOTP(t)+"\n")
	if ok {
		t.Fatalf("a wrong code authenticated:\n%s", out)
	}
}
