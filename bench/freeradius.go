package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"layeh.com/radius"
)

// freeradiusSite is the one virtual server: PAP from the users file.
const freeradiusSite = `server bench {
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
`

// freeradius is FreeRADIUS 3 run in the foreground from a copy of the
// Debian configuration (/etc/freeradius/3.0), as cmd/otpgate's upstream
// test runs it: its own sites and EAP removed, one small site instead,
// users benchN/pw in the users file, no reject delay, room to track
// requests at the bench's rates, the bench as its one client (which must
// send Message-Authenticator, as otpgate requires). Everything else, the
// thread pool included, is Debian's.
type freeradius struct {
	addr   string
	cmd    *exec.Cmd
	out    *capped
	exited chan struct{} // closed when the process has ended
}

func freeradiusUser(i int) string { return fmt.Sprintf("bench%d", i) }

func startFreeRADIUS(dir string, users int, timeout time.Duration) (*freeradius, error) {
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
	_, port, _ := net.SplitHostPort(addr)
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
	files := map[string]string{
		"radiusd.conf":                strings.Join(kept, "\n"),
		"clients.conf":                fmt.Sprintf("client bench {\n\tipaddr = 127.0.0.1\n\tsecret = %s\n\trequire_message_authenticator = yes\n}\n", sharedSecret),
		"mods-config/files/authorize": usersFile.String(),
		"sites-enabled/bench":         fmt.Sprintf(freeradiusSite, port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(raddb, name), []byte(content), 0o640); err != nil {
			return nil, err
		}
	}
	f := &freeradius{addr: addr, out: &capped{}, exited: make(chan struct{})}
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
