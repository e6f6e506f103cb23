package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built is the otpgate binary, built once per test run for the tests
// that run it as its own process.
var built struct {
	sync.Once
	dir, path string
	err       error
	out       []byte
}

// TestMain removes the binary built for the process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// otpgateBinary builds the otpgate binary once and returns its path.
func otpgateBinary(t testing.TB) string {
	t.Helper()
	built.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "otpgate-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "otpgate")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.path
}

// startNode runs "otpgate serve" as its own process with config (its
// {{dir}} replaced by a temp dir), like a node of a cluster on its own
// machine, and stops it with SIGTERM when the test ends. The server it
// returns reads the process's log like startServer's, and its cli runs
// the binary's commands against the node's configuration.
func startNode(t testing.TB, config string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{dir: dir, config: filepath.Join(dir, "otpgate.yaml"), newLog: make(chan struct{}, 1)}
	if !strings.Contains(config, "\nhttp:") {
		config += "\nhttp: {listen: \"127.0.0.1:0\"}\n"
	}
	if err := os.WriteFile(s.config, []byte(strings.ReplaceAll(config, "{{dir}}", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.startProcess(t)
	return s
}

// startProcess starts (or starts again) the node's process and waits
// until it is ready.
func (s *server) startProcess(t testing.TB) {
	t.Helper()
	cmd := exec.Command(otpgateBinary(t), "serve", "--config", s.config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan error, 1)
	s.addrs = nil
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		once := sync.Once{}
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			s.note(sc.Text())
			if strings.Contains(sc.Text(), "otpgate ready") {
				once.Do(func() { close(ready) })
			}
		}
		once.Do(func() { close(ready) })
	}()
	go func() {
		<-scanned
		s.done <- cmd.Wait()
	}()
	s.cancel = func() { cmd.Process.Signal(syscall.SIGTERM) }
	s.kill = func() { cmd.Process.Kill() }
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("node did not become ready:\n%s", s.logText())
	}
	select {
	case err := <-s.done:
		t.Fatalf("node stopped at start: %v\n%s", err, s.logText())
	default:
	}
	t.Cleanup(func() { s.stop(t) })
}

// note records one log line of a node.
func (s *server) note(line string) {
	s.mu.Lock()
	s.logs = append(s.logs, line)
	switch {
	case strings.Contains(line, "msg=listening"):
		s.addrs = append(s.addrs, field(line, "addr"))
	case strings.Contains(line, `msg="web listening"`):
		s.web = field(line, "addr")
	case strings.Contains(line, `msg="metrics listening"`):
		s.metrics = field(line, "addr")
	}
	s.mu.Unlock()
	select {
	case s.newLog <- struct{}{}:
	default:
	}
}
