package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// server is a running otpgate started through run(), as main would.
type server struct {
	dir     string
	config  string
	addrs   []string // RADIUS addresses it listens on
	web     string   // the web listener's address, if any
	acct    string   // the accounting listener's address, if any
	metrics string   // the metrics listener's address
	radsec  string   // the RadSec listener's address, if any

	cancel context.CancelFunc
	kill   func() // a node's process killed with SIGKILL (see startNode)
	done   chan error
	now    func() time.Time // the server's clock; nil means time.Now

	mu     sync.Mutex
	logs   []string
	newLog chan struct{} // signalled after each log line
}

// startServer writes config (with {{dir}} replaced by a temp dir) and runs
// "otpgate serve" until the test ends.
func startServer(t testing.TB, config string) *server {
	t.Helper()
	return startServerAt(t, config, nil)
}

// startServerAt is startServer with the server's clock given.
func startServerAt(t testing.TB, config string, now func() time.Time) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{dir: dir, config: filepath.Join(dir, "otpgate.yaml"), done: make(chan error, 1), now: now, newLog: make(chan struct{}, 1)}
	if !strings.Contains(config, "\nhttp:") {
		config += "\nhttp: {listen: \"127.0.0.1:0\"}\n" // metrics on a free port, not the default 9812
	}
	if err := os.WriteFile(s.config, []byte(strings.ReplaceAll(config, "{{dir}}", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	return s
}

func (s *server) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	s.addrs = nil
	pr, pw := io.Pipe()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs = append(s.logs, line)
			if strings.Contains(line, "msg=listening") {
				s.addrs = append(s.addrs, field(line, "addr"))
			}
			if strings.Contains(line, `msg="web listening"`) {
				s.web = field(line, "addr")
			}
			if strings.Contains(line, `msg="accounting listening"`) {
				s.acct = field(line, "addr")
			}
			if strings.Contains(line, `msg="radsec listening"`) {
				s.radsec = field(line, "addr")
			}
			if strings.Contains(line, `msg="metrics listening"`) {
				s.metrics = field(line, "addr")
			}
			s.mu.Unlock()
			select {
			case s.newLog <- struct{}{}:
			default:
			}
			if strings.Contains(line, "otpgate ready") {
				once.Do(func() { close(ready) })
			}
		}
		once.Do(func() { close(ready) })
	}()
	go func() {
		now := s.now
		if now == nil {
			now = time.Now
		}
		err := runAt(ctx, now, []string{"serve", "--config", s.config}, strings.NewReader(""), io.Discard, pw)
		pw.Close()
		s.done <- err
	}()
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("serve stopped at start: %v\n%s", err, s.logText())
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not become ready:\n%s", s.logText())
	}
	t.Cleanup(func() { s.stop(t) })
}

// stop shuts the server down as SIGTERM would and checks it stopped cleanly.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("serve did not stop")
	}
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// lastCode returns the code in the newest console delivery to dest.
func (s *server) lastCode(t testing.TB, dest string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for i := len(s.logs) - 1; i >= 0; i-- {
			l := s.logs[i]
			if strings.Contains(l, "console delivery") && field(l, "to") == dest {
				s.mu.Unlock()
				text := field(l, "text")
				return text[strings.LastIndexByte(text, ' ')+1:]
			}
		}
		s.mu.Unlock()
		select { // the line may still be on its way from the server's log
		case <-s.newLog:
		case <-deadline:
			t.Fatalf("no code sent to %s in the log:\n%s", dest, s.logText())
		}
	}
}

// waitLog waits for a log line after the first skip lines that contains
// want, and returns it.
func (s *server) waitLog(t testing.TB, skip int, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range s.logs[min(skip, len(s.logs)):] {
			if strings.Contains(l, want) {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		select {
		case <-s.newLog:
		case <-deadline:
			t.Fatalf("no log line with %q:\n%s", want, s.logText())
		}
	}
}

// logsSince returns the log lines from the skip-th on.
func (s *server) logsSince(skip int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logs[min(skip, len(s.logs)):])
}

// logLen is how many log lines there are so far.
func (s *server) logLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs)
}

// field reads key=value or key="quoted value" from a slog text line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		end := strings.Index(v[1:], `"`)
		return v[1 : end+1]
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// cli runs one otpgate command against the server's config and returns
// its standard output; it fails the test on a non-zero exit.
func (s *server) cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.cliErr(args...)
	if err != nil {
		t.Fatalf("otpgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *server) cliErr(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(args, "--config", s.config), strings.NewReader(""), &out, &errOut)
	return out.String() + errOut.String(), err
}

// request is one Access-Request to send.
type request struct {
	user, password, state, callingStation string
	proxyStates                           [][]byte
	noMA, badMA                           bool
	attrs                                 radius.Attributes // more attributes, before Message-Authenticator
	secret                                string
	from                                  string // local address to send from; default any loopback
	// wait is how long to wait for the answer; zero means noAnswerWait.
	wait time.Duration
}

// noAnswerWait is how long a test waits before it takes silence for no
// answer; answerWait is how long a test that needs an answer waits for it
// (bcrypt under -race on a loaded machine takes seconds).
const (
	noAnswerWait = 1500 * time.Millisecond
	answerWait   = 15 * time.Second
)

// exchange sends req to addr and returns the parsed answer and its raw
// bytes; no answer within the timeout returns errNoAnswer.
func exchange(t testing.TB, addr string, req request) (*radius.Packet, []byte, error) {
	t.Helper()
	raw := encodeRequest(t, req)
	return sendRawWait(t, addr, req.from, raw, req.secret, req.wait)
}

var errNoAnswer = errors.New("no answer")

func encodeRequest(t testing.TB, req request) []byte {
	t.Helper()
	secret := []byte(orDefault(req.secret, "testing123"))
	p := radius.New(radius.CodeAccessRequest, secret)
	rfc2865.UserName_SetString(p, req.user)
	if req.password != "" {
		if err := rfc2865.UserPassword_SetString(p, req.password); err != nil {
			t.Fatal(err)
		}
	}
	if req.state != "" {
		rfc2865.State_Set(p, []byte(req.state))
	}
	if req.callingStation != "" {
		rfc2865.CallingStationID_SetString(p, req.callingStation)
	}
	for _, ps := range req.proxyStates {
		p.Add(rfc2865.ProxyState_Type, ps)
	}
	for _, a := range req.attrs {
		p.Add(a.Type, a.Attribute)
	}
	if !req.noMA {
		p.Add(80, make([]byte, 16))
	}
	raw, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !req.noMA {
		at := bytes.LastIndex(raw, append([]byte{80, 18}, make([]byte, 16)...))
		mac := hmac.New(md5.New, secret)
		mac.Write(raw)
		copy(raw[at+2:], mac.Sum(nil))
		if req.badMA {
			raw[at+2] ^= 0xff
		}
	}
	return raw
}

func sendRaw(t testing.TB, addr, from string, raw []byte, secret string) (*radius.Packet, []byte, error) {
	t.Helper()
	return sendRawWait(t, addr, from, raw, secret, 0)
}

func sendRawWait(t testing.TB, addr, from string, raw []byte, secret string, wait time.Duration) (*radius.Packet, []byte, error) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var laddr *net.UDPAddr
	if from != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return roundTripWait(t, conn, raw, secret, wait)
}

func roundTrip(t testing.TB, conn *net.UDPConn, raw []byte, secret string) (*radius.Packet, []byte, error) {
	t.Helper()
	return roundTripWait(t, conn, raw, secret, 0)
}

func roundTripWait(t testing.TB, conn *net.UDPConn, raw []byte, secret string, wait time.Duration) (*radius.Packet, []byte, error) {
	t.Helper()
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	if wait == 0 {
		wait = noAnswerWait
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, nil, errNoAnswer
	}
	if err != nil {
		t.Fatal(err)
	}
	resp := buf[:n]
	sec := []byte(orDefault(secret, "testing123"))
	if !radius.IsAuthenticResponse(resp, raw, sec) {
		t.Fatalf("response authenticator does not verify")
	}
	checkResponseMA(t, resp, raw, sec)
	p, err := radius.Parse(resp, sec)
	if err != nil {
		t.Fatal(err)
	}
	return p, resp, nil
}

// clock is a settable time for the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// checkResponseMA verifies that Message-Authenticator is the first
// attribute of a response and is right (RFC 3579 §3.2).
func checkResponseMA(t testing.TB, resp, req, secret []byte) {
	t.Helper()
	if len(resp) < 38 || resp[20] != 80 || resp[21] != 18 {
		t.Fatalf("Message-Authenticator is not the first attribute of the response")
	}
	b := bytes.Clone(resp)
	copy(b[4:20], req[4:20])
	clear(b[22:38])
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	if !hmac.Equal(mac.Sum(nil), resp[22:38]) {
		t.Fatalf("response Message-Authenticator does not verify")
	}
}

func codeName(p *radius.Packet) string {
	if p == nil {
		return "no answer"
	}
	return p.Code.String()
}

// shows reports whether "otpgate user show NAME" at s shows want; false
// while s does not know the user yet (a node's copy catching up).
func shows(s *server, name, want string) bool {
	out, err := s.cliErr("user", "show", name)
	return err == nil && strings.Contains(squash(out), want)
}
