// Package etcdtest starts real etcd servers for tests: Debian's etcd
// binary (package etcd-server), on loopback, in a temporary directory.
// Tests that need one skip when the binary is missing, and fail when
// the CI variable is set, like the other interop tests.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary finds the etcd binary, or skips t (fails it under CI).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd not found (apt-get install etcd-server): %v", err)
		}
		t.Skip("etcd not found; apt-get install etcd-server")
	}
	return path
}

// Server is one etcd member of a cluster of one.
type Server struct {
	// Endpoint is the client URL.
	Endpoint string
	cmd      *exec.Cmd
	dir      string
	done     chan error
}

// freePort returns a loopback port nothing listens on just now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs etcd with its data in dir, and returns once it answers.
func Start(bin, dir string) (*Server, error) {
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	cmd := exec.Command(bin,
		"--name", "test",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		"--log-level", "error")
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	s := &Server{Endpoint: client, cmd: cmd, dir: dir, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); log.Close() }()
	if err := s.wait(20 * time.Second); err != nil {
		s.Stop()
		out, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
		return nil, fmt.Errorf("etcd did not start: %v\n%s", err, out)
	}
	return s, nil
}

// Restart starts a stopped server again, on the same ports and data.
func (s *Server) Restart() error {
	cmd := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	log, err := os.OpenFile(filepath.Join(s.dir, "etcd.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait(); log.Close() }()
	if err := s.wait(20 * time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("etcd did not start again: %v", err)
	}
	return nil
}

// wait returns once etcd answers a read through its quorum.
func (s *Server) wait(limit time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: limit, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "health")
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case err := <-s.done:
			return fmt.Errorf("etcd exited: %v", err)
		case <-time.After(20 * time.Millisecond): // polling for a process to come up
		}
	}
}

// Stop kills etcd (SIGKILL) and waits for it to exit.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.done
	s.done <- nil // for a second Stop
}

// StartT starts a server of the test's own, stopped when the test ends.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start(Binary(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	dir  string
	err  error
}

// Shared returns the endpoint of an etcd started once for the whole test
// binary; each test uses a prefix of its own. Call StopShared from
// TestMain after the tests have run.
func Shared(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "etcdtest")
		if shared.err == nil {
			shared.s, shared.err = Start(bin, shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s.Endpoint
}

// StopShared stops the etcd Shared started, if any.
func StopShared() {
	if shared.s != nil {
		shared.s.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}
