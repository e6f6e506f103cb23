// Command bench measures otpgate side by side with FreeRADIUS 3.2 on the
// same machine: whitelisted-IP Accepts, the two-round TOTP flow and the
// two-round sent-code flow at several concurrencies (rate, p50, p99), the
// server's peak RSS, and start-up time and RSS with many users in the
// store. Run it from the repository root through bench/run.sh.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

const (
	sharedSecret = "testing123"
	totpSecret   = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each cell runs")
	concs := flag.String("c", "1,16,64", "concurrencies")
	many := flag.Int("users", 100000, "users in the store for the start-up measurement")
	flowUsers := flag.Int("flow-users", 60000, "users for the TOTP and sent-code flows (each used once)")
	flag.Parse()
	if err := run(*duration, *concs, *many, *flowUsers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(d time.Duration, concList string, many, flowUsers int) error {
	var conc []int
	for _, c := range strings.Split(concList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			return fmt.Errorf("-c: %v", err)
		}
		conc = append(conc, n)
	}
	dir, err := os.MkdirTemp("", "otpgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "otpgate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/otpgate").CombinedOutput(); err != nil {
		return fmt.Errorf("build otpgate: %v\n%s", err, out)
	}

	fr, err := startFreeRADIUS(dir)
	if err != nil {
		return err
	}
	defer fr.stop()

	og, err := startOtpgate(dir, bin, flowUsers)
	if err != nil {
		return err
	}
	defer og.stop()

	var rows []row
	for _, c := range conc {
		o := load(c, d, func(cl *client, _ int) error { return cl.accept(og.addr, "office", "10.0.0.1") })
		f := load(c, d, func(cl *client, _ int) error { return cl.accept(fr.addr, "bench", "10.0.0.1") })
		rows = append(rows, row{"whitelisted Accept", c, o, f})
	}
	var next atomic.Int64
	for _, c := range conc {
		o := load(c, d, func(cl *client, _ int) error {
			return cl.totpFlow(og.addr, fmt.Sprintf("t%d", next.Add(1)))
		})
		f := load(c, d, func(cl *client, _ int) error { return cl.accept(fr.addr, "bench", "10.0.0.1") })
		rows = append(rows, row{"TOTP flow (2 round trips)", c, o, f})
	}
	var nextS atomic.Int64
	for _, c := range conc {
		o := load(c, d, func(cl *client, _ int) error {
			return cl.codeFlow(og, fmt.Sprintf("s%d", nextS.Add(1)))
		})
		f := load(c, d, func(cl *client, _ int) error { return cl.accept(fr.addr, "bench", "10.0.0.1") })
		rows = append(rows, row{"sent-code flow (console)", c, o, f})
	}
	ogRSS, frRSS := vmHWM(og.cmd.Process.Pid), vmHWM(fr.cmd.Process.Pid)
	og.stop()

	start, rss, err := startupWith(dir, bin, many)
	if err != nil {
		return err
	}

	fmt.Printf("| scenario | concurrency | otpgate /s | FreeRADIUS /s | ratio | otpgate p50 | otpgate p99 | FreeRADIUS p99 | errors |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %.0f | %.0f | %.2f | %s | %s | %s | %d |\n", r.name, r.conc, r.og.rate, r.fr.rate, r.og.rate/r.fr.rate,
			ms(r.og.p50), ms(r.og.p99), ms(r.fr.p99), r.og.errors+r.fr.errors)
	}
	fmt.Printf("\nPeak RSS during the runs: otpgate %.1f MB, FreeRADIUS %.1f MB\n", ogRSS, frRSS)
	fmt.Printf("With %d users in the store: start-up %s, RSS after start %.1f MB\n", many, start.Round(time.Millisecond), rss)
	return nil
}

type row struct {
	name   string
	conc   int
	og, fr result
}

type result struct {
	rate     float64
	p50, p99 time.Duration
	errors   int64
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// load runs fn in conc loops for d and measures each call.
func load(conc int, d time.Duration, fn func(*client, int) error) result {
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			cl := &client{}
			defer cl.close()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := fn(cl, w); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	r := result{errors: errs.Load(), rate: float64(len(lat)) / d.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// client is one load loop's UDP socket.
type client struct {
	conn *net.UDPConn
	addr string
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
	}
}

// exchange sends one Access-Request and returns the verified answer.
func (c *client) exchange(addr, user, password, ip string, state []byte) (*radius.Packet, error) {
	if c.conn == nil || c.addr != addr {
		c.close()
		ra, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		if c.conn, err = net.DialUDP("udp", nil, ra); err != nil {
			return nil, err
		}
		c.addr = addr
	}
	p := radius.New(radius.CodeAccessRequest, []byte(sharedSecret))
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, password)
	rfc2865.CallingStationID_SetString(p, ip)
	if state != nil {
		rfc2865.State_Set(p, state)
	}
	p.Add(80, make([]byte, 16))
	raw, err := p.Encode()
	if err != nil {
		return nil, err
	}
	m := hmac.New(md5.New, []byte(sharedSecret))
	m.Write(raw)
	copy(raw[len(raw)-16:], m.Sum(nil))
	if _, err := c.conn.Write(raw); err != nil {
		return nil, err
	}
	c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if buf[1] == raw[1] && radius.IsAuthenticResponse(buf[:n], raw, []byte(sharedSecret)) {
			return radius.Parse(bytes.Clone(buf[:n]), []byte(sharedSecret))
		}
	}
}

func (c *client) accept(addr, user, ip string) error {
	p, err := c.exchange(addr, user, "pw", ip, nil)
	if err != nil {
		return err
	}
	if p.Code != radius.CodeAccessAccept {
		return fmt.Errorf("got %s", p.Code)
	}
	return nil
}

func (c *client) totpFlow(addr, user string) error {
	p, err := c.exchange(addr, user, "pw", "203.0.113.9", nil)
	if err != nil {
		return err
	}
	if p.Code != radius.CodeAccessChallenge {
		return fmt.Errorf("got %s, want a challenge", p.Code)
	}
	code, _ := otp.TOTPCode(totpSecret, time.Now())
	p, err = c.exchange(addr, user, code, "203.0.113.9", rfc2865.State_Get(p))
	if err != nil {
		return err
	}
	if p.Code != radius.CodeAccessAccept {
		return fmt.Errorf("answer: got %s", p.Code)
	}
	return nil
}

func (c *client) codeFlow(og *otpgate, user string) error {
	p, err := c.exchange(og.addr, user, "pw", "203.0.113.9", nil)
	if err != nil {
		return err
	}
	if p.Code != radius.CodeAccessChallenge {
		return fmt.Errorf("got %s, want a challenge", p.Code)
	}
	code, err := og.code(phoneOf(user))
	if err != nil {
		return err
	}
	p, err = c.exchange(og.addr, user, code, "203.0.113.9", rfc2865.State_Get(p))
	if err != nil {
		return err
	}
	if p.Code != radius.CodeAccessAccept {
		return fmt.Errorf("answer: got %s", p.Code)
	}
	return nil
}

func phoneOf(user string) string {
	n, _ := strconv.Atoi(strings.TrimPrefix(user, "s"))
	return fmt.Sprintf("+3161%07d", n)
}

// otpgate is the server under test, run as its own process.
type otpgate struct {
	cmd  *exec.Cmd
	addr string

	mu    sync.Mutex
	codes map[string]chan string // phone -> codes written to the log
}

func (o *otpgate) stop() {
	if o.cmd.Process != nil {
		o.cmd.Process.Signal(syscall.SIGTERM)
		o.cmd.Wait()
	}
}

func (o *otpgate) codeChan(phone string) chan string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := o.codes[phone]
	if ch == nil {
		ch = make(chan string, 4)
		o.codes[phone] = ch
	}
	return ch
}

func (o *otpgate) code(phone string) (string, error) {
	select {
	case c := <-o.codeChan(phone):
		return c, nil
	case <-time.After(3 * time.Second):
		return "", errors.New("no code in the log")
	}
}

func writeConfig(dir string, port int) (string, error) {
	cfg := fmt.Sprintf(`radius: {listen: ["127.0.0.1:%d"], max_concurrent: 512}
http: {listen: ""}
log: {level: warn, format: json}
store: {path: "%s/otpgate.db"}
clients:
  - {name: bench, address: 127.0.0.1/32, secret: %s, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - name: acme
    mode: required
    office_networks: [10.0.0.0/8]
    methods: [totp, sms]
    reconnect_window: 0s
    lockout: {failures: 0}
    limits: {sends_per_user_per_hour: 1000000, sends_per_destination_per_day: 1000000, daily_budget: 1000000}
delivery: {allow_console: true, sms: [console]}
`, port, dir, sharedSecret)
	path := filepath.Join(dir, "otpgate.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// fill writes users straight into a new store, with the key file otpgate
// will load: one office user, TOTP users t1..tN and SMS users s1..sN.
func fill(dir string, totpUsers, smsUsers int) error {
	os.Remove(filepath.Join(dir, "otpgate.db"))
	os.Remove(filepath.Join(dir, "otpgate.db.key"))
	db, err := store.Open(filepath.Join(dir, "otpgate.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := secret.Create(filepath.Join(dir, "otpgate.db.key"), nil)
	if err != nil {
		return err
	}
	now := time.Now()
	user := func(name string) (store.User, error) {
		sealed, err := policy.SealTOTP(key, name, totpSecret)
		return store.User{Name: name, Tenant: "acme", Method: policy.MethodTOTP, TOTP: &store.TOTP{Sealed: sealed}, Created: now, Updated: now}, err
	}
	batch := func(from, to int, make func(int) (store.User, error)) error {
		return db.Update(func(tx *store.Tx) error {
			for i := from; i < to; i++ {
				u, err := make(i)
				if err != nil {
					return err
				}
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("key_id", []byte(key.ID())) }); err != nil {
		return err
	}
	if err := batch(0, 1, func(int) (store.User, error) { return user("office") }); err != nil {
		return err
	}
	for i := 1; i <= totpUsers; i += 5000 {
		if err := batch(i, min(i+5000, totpUsers+1), func(i int) (store.User, error) { return user(fmt.Sprintf("t%d", i)) }); err != nil {
			return err
		}
	}
	for i := 1; i <= smsUsers; i += 5000 {
		err := batch(i, min(i+5000, smsUsers+1), func(i int) (store.User, error) {
			name := fmt.Sprintf("s%d", i)
			return store.User{Name: name, Tenant: "acme", Method: policy.MethodSMS, Phone: phoneOf(name), Created: now, Updated: now}, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func startOtpgate(dir, bin string, flowUsers int) (*otpgate, error) {
	if err := fill(dir, flowUsers, flowUsers); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg, err := writeConfig(dir, port)
	if err != nil {
		return nil, err
	}
	o := &otpgate{addr: fmt.Sprintf("127.0.0.1:%d", port), codes: map[string]chan string{}}
	o.cmd = exec.Command(bin, "serve", "--config", cfg)
	stderr, err := o.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := o.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, []byte("console delivery")) {
				continue
			}
			var e struct{ To, Text string }
			if json.Unmarshal(line, &e) == nil {
				o.codeChan(e.To) <- e.Text[strings.LastIndexByte(e.Text, ' ')+1:]
			}
		}
	}()
	// It logs at warn, so "otpgate ready" is not there: it is ready when
	// it answers.
	cl := &client{}
	defer cl.close()
	for t0 := time.Now(); time.Since(t0) < 30*time.Second; {
		if cl.acceptQuick(o.addr, "office") == nil {
			return o, nil
		}
	}
	o.stop()
	return nil, errors.New("otpgate did not start")
}

// startupWith measures start-up time and RSS with n users in the store.
func startupWith(dir, bin string, n int) (time.Duration, float64, error) {
	if err := fill(dir, n, 0); err != nil {
		return 0, 0, err
	}
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	cfg, err := writeConfig(dir, port)
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	// The server logs at warn: "ready" is info. Poll the port instead:
	// start-up ends when it answers.
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
		}
	}()
	cl := &client{}
	defer cl.close()
	for {
		if err := cl.acceptQuick(fmt.Sprintf("127.0.0.1:%d", port), "office"); err == nil {
			break
		}
		if time.Since(t0) > 30*time.Second {
			return 0, 0, errors.New("otpgate with many users did not answer")
		}
	}
	took := time.Since(t0)
	return took, vmRSS(cmd.Process.Pid), nil
}

// acceptQuick is accept with a short wait, for polling a starting server.
func (c *client) acceptQuick(addr, user string) error {
	ra, _ := net.ResolveUDPAddr("udp", addr)
	conn, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return err
	}
	defer conn.Close()
	cc := &client{conn: conn, addr: addr}
	done := make(chan error, 1)
	go func() { done <- cc.accept(addr, user, "10.0.0.1") }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Millisecond):
		conn.Close()
		return errors.New("no answer yet")
	}
}

func freePort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// vmHWM and vmRSS read a process's peak and current resident set, in MB.
func vmHWM(pid int) float64 { return procStatus(pid, "VmHWM:") }
func vmRSS(pid int) float64 { return procStatus(pid, "VmRSS:") }

func procStatus(pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// freeradius is FreeRADIUS 3 from a copy of the Debian configuration with
// one small virtual server: PAP for "bench"/"pw" from the users file.
type freeradius struct {
	cmd  *exec.Cmd
	addr string
}

func (f *freeradius) stop() {
	syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	f.cmd.Wait()
}

func startFreeRADIUS(dir string) (*freeradius, error) {
	raddb := filepath.Join(dir, "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", raddb).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy /etc/freeradius/3.0 (apt-get install freeradius): %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(raddb, "radiusd.conf"))
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, l := range strings.Split(string(conf), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "user" || f[0] == "group") {
			continue
		}
		kept = append(kept, l)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sites, _ := filepath.Glob(filepath.Join(raddb, "sites-enabled", "*"))
	for _, f := range append(sites, filepath.Join(raddb, "mods-enabled", "eap")) {
		os.Remove(f)
	}
	files := map[string]string{
		"radiusd.conf":                strings.Join(kept, "\n"),
		"clients.conf":                fmt.Sprintf("client bench {\n ipaddr = 127.0.0.1\n secret = %s\n}\n", sharedSecret),
		"mods-config/files/authorize": "bench Cleartext-Password := \"pw\"\n",
		"sites-enabled/bench":         fmt.Sprintf("server bench {\n listen {\n  type = auth\n  ipaddr = 127.0.0.1\n  port = %d\n }\n authorize {\n  files\n  pap\n }\n authenticate {\n  Auth-Type PAP {\n   pap\n  }\n }\n}\n", port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(raddb, name), []byte(content), 0o640); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("freeradius", "-f", "-d", raddb, "-l", "stdout")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start freeradius: %w", err)
	}
	f := &freeradius{cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	cl := &client{}
	defer cl.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if cl.acceptQuick(f.addr, "bench") == nil {
			return f, nil
		}
	}
	f.stop()
	return nil, fmt.Errorf("freeradius did not answer on %s:\n%s", f.addr, out.String())
}

// syncBuffer is a bytes.Buffer a process may write to while we read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // enough to tell why it failed
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
