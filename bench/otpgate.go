package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// otpgateConfig is the bench's configuration: one gateway on loopback that
// must sign its requests and names the end user's IP in
// Calling-Station-Id; one tenant whose office is 10.0.0.0/8, with TOTP and
// SMS (by the console provider, so codes land in the log), nothing
// remembered between logins, no lockout and send limits out of reach, so
// that the bench measures the work of a login and not a limit. Metrics
// stay on, on a free port, as they are by default.
const otpgateConfig = `radius: {listen: ["%s"]}
http: {listen: "%s"}
log: {level: %s, format: json}
store: {path: "%s"}
clients:
  - {name: bench, address: 127.0.0.1/32, secret: %s, tenant: acme,
     require_message_authenticator: true, client_ip_attribute: Calling-Station-Id}
tenants:
  - name: acme
    mode: required
    office_networks: [10.0.0.0/8]
    methods: [totp, sms]
    reconnect_window: 0s
    lockout: {failures: 0}
    limits: {sends_per_user_per_hour: 1000000, sends_per_destination_per_day: 1000000, daily_budget: 1000000}
delivery: {allow_console: true, sms: [console]}
`

// otpgate is the server under test, its own process, read through its
// JSON log on standard error.
type otpgate struct {
	addr    string
	metrics string // the URL of its metrics, when known
	config  string // its configuration file
	logFile string // where its log goes; empty: through the bench (read)
	waitErr error  // how it ended, with logFile
	cmd     *exec.Cmd
	started time.Time     // just before exec
	ready   chan struct{} // closed at the "otpgate ready" line (or, below info, at the first answer)
	readyAt time.Time     // when that was
	exited  chan struct{} // closed when the log ends

	codes *codeBox // console deliveries, to the users they went to

	stopOnce sync.Once
	stopErr  error

	mu   sync.Mutex
	tail []string // the last lines of the log, for errors
}

// startOtpgate writes the configuration into dir (whose store must be
// filled) and runs bin serve with it; env is added to the environment.
// With toFile its log goes to a file, as it would to journald, instead of
// through the bench, which then reads none of it (codes must be nil).
func startOtpgate(bin, dir, logLevel string, codes *codeBox, env []string, toFile bool) (*otpgate, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeTCPAddr()
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf(otpgateConfig, addr, metricsAddr, logLevel, filepath.Join(dir, "otpgate.db"), sharedSecret)
	o, err := startOtpgateWith(bin, dir, addr, text, logLevel, codes, env, toFile)
	if err == nil {
		o.metrics = "http://" + metricsAddr + "/metrics"
	}
	return o, err
}

// startOtpgateWith runs bin serve with the configuration text, written
// into dir, listening on addr.
func startOtpgateWith(bin, dir, addr, text, logLevel string, codes *codeBox, env []string, toFile bool) (*otpgate, error) {
	cfg := filepath.Join(dir, "otpgate.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	o := &otpgate{config: cfg, addr: addr, ready: make(chan struct{}), exited: make(chan struct{}), codes: codes}
	o.cmd = exec.Command(bin, "serve", "--config", cfg)
	o.cmd.Env = append(os.Environ(), env...)
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the bench, which stops it
	var stderr io.ReadCloser
	var err error
	if toFile {
		o.logFile = filepath.Join(dir, "otpgate.log")
		f, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy
		o.cmd.Stderr = f
	} else if stderr, err = o.cmd.StderrPipe(); err != nil {
		return nil, err
	}
	o.started = time.Now()
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start otpgate: %w", err)
	}
	if toFile {
		go func() { o.waitErr = o.cmd.Wait(); close(o.exited) }()
		go o.poll()
	} else {
		go o.read(stderr)
	}
	if !toFile && logLevel != "debug" && logLevel != "info" {
		// The ready line is info: ready is when it answers.
		go o.poll()
	}
	select {
	case <-o.ready:
		return o, nil
	case <-o.exited:
		o.wait()
		return nil, fmt.Errorf("otpgate stopped at start:\n%s", o.logTail())
	case <-time.After(60 * time.Second):
		o.cmd.Process.Kill()
		<-o.exited
		o.wait()
		return nil, fmt.Errorf("otpgate not ready after 60 s:\n%s", o.logTail())
	}
}

// poll marks the server ready once it answers a request, any answer.
func (o *otpgate) poll() {
	c, err := dial(o.addr, 20*time.Millisecond)
	if err != nil {
		return
	}
	defer c.close()
	for {
		select {
		case <-o.exited:
			return
		default:
		}
		if _, err := c.exchange("probe", "pw", officeIP, nil); err == nil {
			o.readyAt = time.Now()
			close(o.ready)
			return
		}
	}
}

// read follows the log. It must keep up: otpgate blocks when the pipe is
// full, so it does little per line.
func (o *otpgate) read(r io.Reader) {
	defer close(o.exited)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	isReady := false
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Contains(line, []byte(`"console delivery`)):
			var e struct{ To, Text string }
			if o.codes != nil && json.Unmarshal(line, &e) == nil {
				o.codes.deliver(e.To, e.Text[strings.LastIndexByte(e.Text, ' ')+1:])
			}
			continue
		case !isReady && bytes.Contains(line, []byte(`"msg":"otpgate ready"`)):
			o.readyAt, isReady = time.Now(), true
			close(o.ready)
		case bytes.Contains(line, []byte(`"msg":"decision"`)):
			continue
		}
		o.mu.Lock()
		o.tail = append(o.tail, string(line))
		if len(o.tail) > 40 {
			o.tail = o.tail[len(o.tail)-40:]
		}
		o.mu.Unlock()
	}
}

// logTail is the end of the log without the decisions and codes.
func (o *otpgate) logTail() string {
	if o.logFile != "" {
		b, _ := os.ReadFile(o.logFile)
		var kept []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, `"msg":"decision"`) && !strings.Contains(l, `"console delivery`) {
				kept = append(kept, l)
			}
		}
		return strings.Join(kept[max(0, len(kept)-40):], "\n")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.tail, "\n")
}

// stop ends the server as systemd would (SIGTERM: it drains and closes the
// store) and waits for it. Only the first call does anything.
func (o *otpgate) stop() error {
	o.stopOnce.Do(func() { o.stopErr = o.terminate() })
	return o.stopErr
}

// crash kills the server at once (SIGKILL), as a power cut would end it.
func (o *otpgate) crash() {
	o.stopOnce.Do(func() {
		o.cmd.Process.Kill()
		<-o.exited
		o.wait()
	})
}

// wait reaps the process once it has exited, and returns how it ended.
func (o *otpgate) wait() error {
	if o.logFile != "" {
		return o.waitErr // reaped by the goroutine that closed exited
	}
	return o.cmd.Wait()
}

func (o *otpgate) terminate() error {
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(30 * time.Second):
		o.cmd.Process.Kill()
		<-o.exited
	}
	err := o.wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("otpgate: %v:\n%s", err, o.logTail())
	}
	return err
}

// codeBox hands the codes otpgate logs to the load loop that waits for
// them, by the sent-code user they went to.
type codeBox struct {
	users []chan string
	stray int // codes to nobody the bench knows, or that nobody took in time
	mu    sync.Mutex
}

func newCodeBox(users int) *codeBox {
	b := &codeBox{users: make([]chan string, users)}
	for i := range b.users {
		b.users[i] = make(chan string, 2)
	}
	return b
}

func (b *codeBox) deliver(to, code string) {
	if i, ok := userOfPhone(to); ok && i < len(b.users) {
		select {
		case b.users[i] <- code:
			return
		default:
		}
	}
	b.mu.Lock()
	b.stray++
	b.mu.Unlock()
}

// strays is how many codes went undelivered.
func (b *codeBox) strays() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stray
}

// forget drops codes for user i still waiting from an earlier flow.
func (b *codeBox) forget(i int) {
	for {
		select {
		case <-b.users[i]:
		default:
			return
		}
	}
}

// wait returns the next code sent to user i.
func (b *codeBox) wait(i int, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c := <-b.users[i]:
		return c, nil
	case <-t.C:
		return "", errTimeout
	}
}
