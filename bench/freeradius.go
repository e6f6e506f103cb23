package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
)

// freeradiusSites are the two virtual servers, each on its own port:
// "bench" answers PAP from the users file in one round trip (the peer of
// the whitelisted Accept); "totp" is the peer of otpgate's TOTP flow with
// rlm_totp, in two: without a State it checks the password (PAP, the
// users file's Cleartext-Password), keeps the user's name in
// session-state and answers Access-Challenge, which carries the State
// FreeRADIUS made for it; with a State it needs that State's
// session-state to name the same user and checks the User-Password as a
// TOTP code against control:TOTP-Secret from the users file. rlm_totp
// keeps no record of codes used (a code can be replayed in its window)
// and writes nothing to disk.
const freeradiusSites = `server bench {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %s
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

server totp {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %s
	}
	authorize {
		files
		if (!&State) {
			update control {
				&Auth-Type := password
			}
		}
		else {
			update request {
				&TOTP-Password := &User-Password
			}
			update control {
				&Auth-Type := code
			}
		}
	}
	authenticate {
		Auth-Type password {
			pap
			update session-state {
				&User-Name := &User-Name
			}
			update control {
				&Response-Packet-Type := Access-Challenge
			}
			handled
		}
		Auth-Type code {
			if (!&session-state:User-Name || &session-state:User-Name != &User-Name) {
				reject
			}
			totp
		}
	}
}
`

// freeradius is FreeRADIUS 3 run in the foreground from a copy of the
// Debian configuration (/etc/freeradius/3.0), as cmd/otpgate's upstream
// test runs it: its own sites and EAP removed, one small site instead,
// users benchN/pw in the users file, no reject delay, room to track
// requests at the bench's rates, the bench as its one client (which must
// send Message-Authenticator, as otpgate requires). Everything else, the
// thread pool included, is Debian's.
type freeradius struct {
	addr     string // the PAP site
	totpAddr string // the TOTP site
	cmd      *exec.Cmd
	out      *capped
	exited   chan struct{} // closed when the process has ended
}

func freeradiusUser(i int) string { return fmt.Sprintf("bench%d", i) }

// startFreeRADIUS runs FreeRADIUS with users PAP users (benchN, password
// pw) and totpUsers TOTP users (totpName(i), password pw, the bench's TOTP
// secret).
func startFreeRADIUS(dir string, users, totpUsers int, timeout time.Duration) (*freeradius, error) {
	bin, err := exec.LookPath("freeradius")
	if err != nil {
		return nil, fmt.Errorf("freeradius not found (apt-get install freeradius): %w", err)
	}
	raddb := filepath.Join(dir, "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", raddb).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy /etc/freeradius/3.0 (it is readable by root and the freerad group only): %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(raddb, "radiusd.conf"))
	if err != nil {
		return nil, err
	}
	// Stay the user we are: the copy is in our private directory.
	var kept []string
	for _, l := range strings.Split(string(conf), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && (f[0] == "user" || f[0] == "group"):
			continue
		case len(f) > 0 && f[0] == "reject_delay":
			l = "\treject_delay = 0"
		case len(f) > 0 && f[0] == "max_requests":
			// Debian's 16384 answered requests kept for duplicate
			// detection (cleanup_delay, 5 s) run out at 3,300
			// requests/s, after which FreeRADIUS drops requests: keep as
			// many as otpgate does (radius.MaxDuplicates).
			l = "max_requests = 262144"
		}
		kept = append(kept, l)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	totpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	_, totpPort, _ := net.SplitHostPort(totpAddr)
	sites, _ := filepath.Glob(filepath.Join(raddb, "sites-enabled", "*"))
	for _, f := range append(sites, filepath.Join(raddb, "mods-enabled", "eap")) { // eap wants the sections dropped
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	var usersFile strings.Builder
	for i := range users {
		fmt.Fprintf(&usersFile, "%s Cleartext-Password := \"pw\"\n", freeradiusUser(i))
	}
	for i := range totpUsers {
		fmt.Fprintf(&usersFile, "%s Cleartext-Password := \"pw\", TOTP-Secret := \"%s\"\n", totpName(i), totpSecret)
	}
	files := map[string]string{
		"radiusd.conf":                strings.Join(kept, "\n"),
		"clients.conf":                fmt.Sprintf("client bench {\n\tipaddr = 127.0.0.1\n\tsecret = %s\n\trequire_message_authenticator = yes\n}\n", sharedSecret),
		"mods-config/files/authorize": usersFile.String(),
		"sites-enabled/bench":         fmt.Sprintf(freeradiusSites, port, totpPort),
		"mods-enabled/totp":           "totp {\n}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(raddb, name), []byte(content), 0o640); err != nil {
			return nil, err
		}
	}
	f := &freeradius{addr: addr, totpAddr: totpAddr, out: &capped{}, exited: make(chan struct{})}
	f.cmd = exec.Command(bin, "-f", "-l", "stdout", "-d", raddb)
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start freeradius: %w", err)
	}
	go func() { f.cmd.Wait(); close(f.exited) }()
	// Ready when it answers.
	c, err := dial(addr, 100*time.Millisecond)
	if err != nil {
		f.stop()
		return nil, err
	}
	defer c.close()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		select {
		case <-f.exited:
			return nil, fmt.Errorf("freeradius stopped at start:\n%s", f.out)
		default:
		}
		if p, err := c.exchange(freeradiusUser(0), "pw", "10.0.0.1", nil); err == nil {
			if err := expect(p, radius.CodeAccessAccept, "freeradius's first answer"); err != nil {
				f.stop()
				return nil, fmt.Errorf("%w:\n%s", err, f.out)
			}
			if totpUsers > 0 {
				if err := checkTOTPSite(totpAddr); err != nil {
					f.stop()
					return nil, fmt.Errorf("freeradius's TOTP site: %w:\n%s", err, f.out)
				}
			}
			return f, nil
		}
	}
	f.stop()
	return nil, fmt.Errorf("freeradius did not answer on %s within %s:\n%s", addr, timeout, f.out)
}

func (f *freeradius) stop() {
	syscall.Kill(-f.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
	}
}

// freeAddr is a free UDP port on loopback, as host:port.
func freeAddr() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// capped keeps the first 256 kB a process writes, enough to tell why it
// failed, and the first lines that look like trouble.
type capped struct {
	mu       sync.Mutex
	b        bytes.Buffer
	troubles int      // lines with Error or WARNING
	samples  []string // the first few of them
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range bytes.Split(p, []byte("\n")) {
		if bytes.Contains(l, []byte("Error")) || bytes.Contains(l, []byte("WARNING")) {
			c.troubles++
			if len(c.samples) < 3 {
				c.samples = append(c.samples, string(l))
			}
		}
	}
	if c.b.Len() < 256<<10 {
		c.b.Write(p)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// trouble is how many lines looked like trouble, and the first few.
func (c *capped) trouble() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.troubles, slices.Clone(c.samples)
}

// checkTOTPSite makes sure the TOTP site does the flow's work before it is
// measured: the right code after the challenge is accepted, a wrong code,
// a wrong password, a made-up State and another user's State are not.
func checkTOTPSite(addr string) error {
	c, err := dial(addr, time.Second)
	if err != nil {
		return err
	}
	defer c.close()
	code, err := otp.TOTPCode(totpSecret, time.Now())
	if err != nil {
		return err
	}
	wrong := fmt.Sprintf("%06d", (mustAtoi(code)+1)%1000000)
	challenge := func(user, password string) ([]byte, error) {
		p, err := c.exchange(user, password, outsideIP1, nil)
		if err != nil {
			return nil, err
		}
		if p.Code != radius.CodeAccessChallenge {
			return nil, fmt.Errorf("password: got %s, want Access-Challenge", p.Code)
		}
		return rfc2865.State_Get(p), nil
	}
	answer := func(user, code string, state []byte, want radius.Code, what string) error {
		p, err := c.exchange(user, code, outsideIP1, state)
		if err != nil {
			return err
		}
		if p.Code != want {
			return fmt.Errorf("%s: got %s, want %s", what, p.Code, want)
		}
		return nil
	}
	if p, err := c.exchange(totpName(0), "wrong", outsideIP1, nil); err != nil || p.Code != radius.CodeAccessReject {
		return fmt.Errorf("a wrong password was not rejected (%v)", err)
	}
	if err := answer(totpName(0), code, []byte("made-up state 16"), radius.CodeAccessReject, "a made-up State"); err != nil {
		return err
	}
	state, err := challenge(totpName(1), "pw")
	if err != nil {
		return err
	}
	if err := answer(totpName(0), code, state, radius.CodeAccessReject, "another user's State"); err != nil {
		return err
	}
	if state, err = challenge(totpName(0), "pw"); err != nil {
		return err
	}
	if err := answer(totpName(0), wrong, state, radius.CodeAccessReject, "a wrong code"); err != nil {
		return err
	}
	if state, err = challenge(totpName(0), "pw"); err != nil {
		return err
	}
	return answer(totpName(0), code, state, radius.CodeAccessAccept, "the right code")
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
