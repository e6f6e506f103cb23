// Package etcdtest runs a real etcd cluster on loopback for tests: each
// member is its own process of the etcd binary (Debian's etcd-server), so
// that a test can kill one with SIGKILL, stop them all, and start them
// again on the data they had. Without the binary a test is skipped,
// except in CI (the CI variable set), where .ci/run installs it.
package etcdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	bin := Binary(t)
	base := t.TempDir()
	if d, err := shm(); err == nil {
		base = d
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	// A port found free may be taken by another test process before a
	// member binds it; the member then exits at once, and the cluster is
	// made again on other ports.
	for try := 1; ; try++ {
		c, err := start(bin, filepath.Join(base, fmt.Sprint(try)), n)
		if c != nil {
			t.Cleanup(c.Stop)
		}
		var exited errExited
		if err != nil && errors.As(err, &exited) && try < 3 {
			c.Stop()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// errExited: a member exited while the cluster was starting.
type errExited struct{ name, log string }

func (e errExited) Error() string {
	return fmt.Sprintf("etcd member %s exited while starting; the end of its log:\n%s", e.name, e.log)
}

// shm makes a directory for members' data on tmpfs, where there is one:
// several helpers share the machine's disk.
func shm() (string, error) {
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return "", errors.New("no /dev/shm")
	}
	return os.MkdirTemp("/dev/shm", "etcdtest-")
}

func start(bin, base string, n int) (*Cluster, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	var initial []string
	for i := range n {
		client, err := freePort()
		if err != nil {
			return nil, err
		}
		peer, err := freePort()
		if err != nil {
			return nil, err
		}
		m := &Member{Name: fmt.Sprintf("m%d", i), Client: "http://" + client, peer: "http://" + peer,
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
		if err := m.start(bin); err != nil {
			return c, err
		}
	}
	return c, c.waitReady()
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (m *Member) start(bin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil // running
	}
	cmd := exec.Command(bin, m.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd %s: %v", m.Name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(m.done)
	// From now on the member joins the cluster it was made with.
	for i, a := range m.args {
		if a == "new" && m.args[i-1] == "--initial-cluster-state" {
			m.args[i] = "existing"
		}
	}
	return nil
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

// Kill kills member i with SIGKILL.
func (c *Cluster) Kill(i int) { c.Members[i].Kill() }

// Stop kills every member (SIGKILL: an outage, not a shutdown). Restart
// brings them back on their data.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(m.Kill)
	}
	wg.Wait()
}

// Restart starts every member that is not running again on its data,
// and waits until the cluster has a quorum.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	for _, m := range c.Members {
		if err := m.start(c.bin); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitReady(); err != nil {
		t.Fatal(err)
	}
}

// RestartMember starts one stopped or killed member again on its data.
func (c *Cluster) RestartMember(t testing.TB, m *Member) {
	t.Helper()
	if err := m.start(c.bin); err != nil {
		t.Fatal(err)
	}
}

// WaitMember waits up to a minute until member i answers as part of the
// cluster (after RestartMember).
func (c *Cluster) WaitMember(t testing.TB, i int) {
	t.Helper()
	cli, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, c.Members[i].Client)
		cancel()
		if err == nil && st.Leader != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd member %s not back after a minute: %v", c.Members[i].Name, err)
		}
		time.Sleep(50 * time.Millisecond) // polling for a condition, not for time to pass
	}
}

// Endpoints returns the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Client)
	}
	return eps
}

func (c *Cluster) client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// Client returns a client of the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := c.client()
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
	if err := c.waitReady(); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) waitReady() error {
	cli, err := c.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "etcdtest-ready")
		cancel()
		if err == nil {
			return nil
		}
		if err := c.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster not ready after a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for a condition, not for time to pass
	}
}

// exited returns errExited for a member whose process has ended by
// itself (not killed or stopped by the test).
func (c *Cluster) exited() error {
	for _, m := range c.Members {
		m.mu.Lock()
		running, done := m.cmd != nil, m.done
		m.mu.Unlock()
		if !running {
			continue
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(m.dir), m.Name+".log"))
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			return errExited{name: m.Name, log: string(log)}
		default:
		}
	}
	return nil
}

var shared struct {
	once sync.Once
	c    *Cluster
	dir  string
	err  error
}

// Shared returns the endpoints of a one-member cluster started once for
// the whole test binary; each test uses a prefix of its own. Call
// StopShared from TestMain after the tests have run.
func Shared(t testing.TB) []string {
	t.Helper()
	bin := Binary(t)
	shared.once.Do(func() {
		if shared.dir, shared.err = shm(); shared.err != nil {
			shared.dir, shared.err = os.MkdirTemp("", "etcdtest-")
		}
		if shared.err == nil {
			shared.c, shared.err = start(bin, shared.dir, 1)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c.Endpoints()
}

// StopShared stops the cluster Shared started, if any.
func StopShared() {
	if shared.c != nil {
		shared.c.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// Metric is the sum of the samples of the metric name that the member at
// ep serves on /metrics, counting only those whose labels hold every one
// of labels (such as `grpc_method="Txn"`), and whether there was one.
func Metric(t testing.TB, ep, name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(ep + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
			continue
		}
		if slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(rest, l) }) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics of %s: %q", ep, line)
		}
		sum, found = sum+v, true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum, found
}
