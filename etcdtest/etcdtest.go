// Package etcdtest runs a real etcd cluster on loopback for tests: each
// member is its own process of the etcd binary (Debian's etcd-server), so
// that a test can kill one with SIGKILL, stop them all, and start them
// again on the data they had. Without the binary a test is skipped,
// except in CI (the CI variable set), where .ci/run installs it.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
	bin     string
}

// Member is one etcd process.
type Member struct {
	Name string
	// Client is the URL clients reach it at.
	Client string
	peer   string
	dir    string
	args   []string
	log    *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Binary returns the path of the etcd binary, skipping the test when
// there is none (failing it in CI).
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("etcd is not installed; .ci/run installs it (apt-get install etcd-server)")
	}
	t.Skip("etcd is not installed (apt-get install etcd-server etcd-client)")
	return ""
}

// Start starts an etcd cluster of n members on loopback, waits until it
// has a leader, and stops it when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{bin: Binary(t)}
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		// Members' data on tmpfs: several helpers share the machine's disk.
		if d, err := os.MkdirTemp("/dev/shm", "etcdtest-"); err == nil {
			base = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), Client: "http://" + freePort(t), peer: "http://" + freePort(t),
			dir: filepath.Join(base, fmt.Sprintf("m%d", i))}
		initial = append(initial, m.Name+"="+m.peer)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.dir,
			"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "etcdtest",
			// A loaded test machine must not make the members elect anew.
			"--heartbeat-interval", "100", "--election-timeout", "2500",
			"--logger", "zap", "--log-outputs", filepath.Join(base, m.Name+".log"),
		}
		m.start(t, c.bin)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill()
		}
	})
	c.WaitReady(t)
	return c
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (m *Member) start(t testing.TB, bin string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(bin, m.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd %s: %v", m.Name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(m.done)
}

// Kill kills the member with SIGKILL and waits for it to exit.
func (m *Member) Kill() { m.signal(syscall.SIGKILL) }

// Stop stops the member with SIGTERM and waits for it to exit.
func (m *Member) Stop() { m.signal(syscall.SIGTERM) }

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	<-done
}

// Restart starts a stopped or killed member again on its data.
func (c *Cluster) Restart(t testing.TB, m *Member) {
	t.Helper()
	args := append([]string(nil), m.args...)
	for i, a := range args {
		if a == "new" && args[i-1] == "--initial-cluster-state" {
			args[i] = "existing"
		}
	}
	m.args = args
	m.start(t, c.bin)
}

// Endpoints returns the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Client)
	}
	return eps
}

// Client returns a client of the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitReady waits up to a minute until the cluster answers a
// linearizable read, which takes a leader and a quorum.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	cli := c.Client(t)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "etcdtest-ready")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd cluster not ready after a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for a condition, not for time to pass
	}
}
