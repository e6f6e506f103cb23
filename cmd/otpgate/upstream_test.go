package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// startFreeRADIUS runs FreeRADIUS 3 from a copy of the Debian
// configuration, on 127.0.0.1 and a free port, with one client (otpgate,
// which must send Message-Authenticator) and one user, alice/right.
func startFreeRADIUS(t *testing.T, secret string) string {
	t.Helper()
	return startFreeRADIUSUsers(t, secret, "alice Cleartext-Password := \"right\"\n")
}

// startFreeRADIUSUsers is startFreeRADIUS with the users given as lines of
// FreeRADIUS's users file.
func startFreeRADIUSUsers(t *testing.T, secret, users string) string {
	t.Helper()
	bin, err := exec.LookPath("freeradius")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("freeradius is not installed; .ci/run installs it")
		}
		t.Skip("freeradius not installed (apt-get install freeradius)")
	}
	dir := filepath.Join(t.TempDir(), "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the FreeRADIUS configuration: %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "radiusd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Stay the user we are: the copy is in our private temp dir.
	var kept []string
	for _, l := range strings.Split(string(conf), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "user" || f[0] == "group") {
			continue
		}
		if len(f) > 0 && f[0] == "reject_delay" {
			l = "reject_delay = 0" // the test's upstream timeout is short
		}
		kept = append(kept, l)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("radiusd.conf", strings.Join(kept, "\n"))
	write("clients.conf", fmt.Sprintf("client otpgate {\n ipaddr = 127.0.0.1\n secret = %s\n require_message_authenticator = yes\n}\n", secret))
	authorize := filepath.Join(dir, "mods-config", "files", "authorize")
	debian, _ := os.ReadFile(authorize)
	write("mods-config/files/authorize", users+"\n"+string(debian))

	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	// One small virtual server instead of Debian's sites.
	sites, _ := filepath.Glob(filepath.Join(dir, "sites-enabled", "*"))
	for _, f := range append(sites, filepath.Join(dir, "mods-enabled", "eap")) { // eap wants sections we drop
		os.Remove(f)
	}
	write("sites-enabled/otpgate-test", fmt.Sprintf(`server otpgate_test {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
}
`, port))
	cmd := exec.Command(bin, "-f", "-X", "-d", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	ready := make(chan error, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ready to process requests") {
				ready <- nil
			}
		}
		ready <- fmt.Errorf("freeradius exited:\n%s", log.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("freeradius did not become ready")
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func TestUpstreamFreeRADIUS(t *testing.T) {
	upstream := startFreeRADIUS(t, "upstream-secret")
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // a first upstream that is down
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s := startServer(t, fmt.Sprintf(`
radius:
  listen: ["127.0.0.1:0"]
  upstream:
    timeout: 500ms
    servers:
      - {address: "%s", secret: upstream-secret}
      - {address: "%s", secret: upstream-secret}
store: {path: "{{dir}}/otpgate.db"}
clients:
  - {name: vpn, address: 127.0.0.1/32, secret: testing123, tenant: acme, password: radius,
     client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp]}
`, silent.LocalAddr(), upstream))
	s.cli(t, "user", "add", "alice", "--tenant", "acme")
	s.cli(t, "user", "totp", "alice", "--secret", testSecret)
	addr := s.addrs[0]

	// FreeRADIUS's Reject is ours, whatever the place.
	expect(t, mustExchange(t, addr, request{user: "alice", password: "wrong", callingStation: "192.0.2.5"}),
		radius.CodeAccessReject, "Wrong user name or password")
	// Its Accept lets the login on to the second factor.
	expect(t, mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "192.0.2.5"}),
		radius.CodeAccessAccept, "HQ IP Allowed!")
	ch := mustExchange(t, addr, request{user: "alice", password: "right", callingStation: "203.0.113.5"})
	expect(t, ch, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	expect(t, mustExchange(t, addr, request{user: "alice", password: totpNow(t), callingStation: "203.0.113.5", state: string(rfc2865.State_Get(ch))}),
		radius.CodeAccessAccept, "")
}
