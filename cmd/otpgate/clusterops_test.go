package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/store/etcdtest"
)

// runCLI runs one otpgate command as main would, and returns what it
// printed on both outputs.
func runCLI(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &out)
	return out.String(), err
}

// offlineConfig writes the configuration of a node of the cluster on
// endpoint that does not run: the CLI on it reaches etcd itself.
func offlineConfig(t *testing.T, endpoint, key, node string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "otpgate.yaml")
	r := strings.NewReplacer("{{etcd}}", endpoint, "{{key}}", key, "{{node}}", node, "{{dir}}", dir)
	if err := os.WriteFile(cfg, []byte(r.Replace(etcdNodeConfig)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestClusterStatus runs otpgate cluster status through a node's admin
// socket and straight against etcd: both list the two running nodes, a
// third node with another configuration is warned about, and a single
// node's configuration says there is no cluster.
func TestClusterStatus(t *testing.T) {
	etcd := etcdtest.StartT(t)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoint, key, "node-a")
	startEtcdNode(t, etcd.Endpoint, key, "node-b")
	direct := offlineConfig(t, etcd.Endpoint, key, "admin-host")

	var out string
	waitFor(t, "both nodes' heartbeats", func() bool {
		out = a.cli(t, "cluster", "status")
		return strings.Contains(out, "node-a ") && strings.Contains(out, "node-b ")
	})
	if strings.Contains(out, "warning") {
		t.Errorf("two nodes of one configuration: got a warning:\n%s", out)
	}
	fp := configFingerprint(a.config)
	if strings.Count(out, fp) != 2 {
		t.Errorf("want both nodes with the configuration's fingerprint %s:\n%s", fp, out)
	}
	got, err := runCLI("cluster", "status", "--config", direct)
	if err != nil || !strings.Contains(got, "node-a ") || !strings.Contains(got, "node-b ") || strings.Contains(got, "warning") {
		t.Fatalf("cluster status straight from etcd: %v\n%s", err, got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(direct), "node.db")); err == nil {
		t.Error("cluster status made a store file on a host that runs no node")
	}

	// A node started with another configuration (or version) is named
	// in a warning, by both ways of asking.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cluster.Beat(context.Background(), cli, "/otpgate-test-live/", cluster.Node{Name: "node-c", Version: "otpgate v0.9.0", Fingerprint: "0badc0ffee00"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, how := range []func() (string, error){
		func() (string, error) { return a.cliErr("cluster", "status") },
		func() (string, error) { return runCLI("cluster", "status", "--config", direct) },
	} {
		got, err := how()
		if err != nil || !strings.Contains(got, "node-c ") || !strings.Contains(got, "0badc0ffee00") || !strings.Contains(got, "warning: the nodes run different configurations or versions") {
			t.Errorf("with a node of another configuration: %v\n%s", err, got)
		}
	}

	// A single node: no cluster, and no store made to say so.
	dir := t.TempDir()
	single := filepath.Join(dir, "otpgate.yaml")
	bbolt := strings.Replace(etcdNodeConfig, "  backend: etcd\n  etcd: {endpoints: [\"{{etcd}}\"], prefix: /otpgate-test/}\n", "", 1)
	bbolt = strings.NewReplacer("{{dir}}", dir, "{{key}}", filepath.Join(dir, "otpgate.key"), "{{node}}", "solo").Replace(bbolt)
	if err := os.WriteFile(single, []byte(bbolt), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = runCLI("cluster", "status", "--config", single)
	if err == nil || !strings.Contains(err.Error(), "no cluster: the store is the file") {
		t.Errorf("cluster status on bbolt: got %v\n%s", err, got)
	}
	if _, err := os.Stat(filepath.Join(dir, "node.db")); err == nil {
		t.Error("cluster status on bbolt made a store file")
	}
}

// TestImportManyOnEtcd imports 1000 users through a node on etcd, more
// than the 128 operations etcd takes in one transaction: all of them, seen
// by the other node; a file with one bad line among 500 imports none.
func TestImportManyOnEtcd(t *testing.T) {
	etcd := etcdtest.StartT(t)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoint, key, "a")
	b := startEtcdNode(t, etcd.Endpoint, key, "b")
	csvOf := func(from, n int, bad int) string {
		var sb strings.Builder
		sb.WriteString("name,tenant,home_ips\n")
		for i := from; i < from+n; i++ {
			ip := "198.51.100.7"
			if i == bad {
				ip = "not-an-ip"
			}
			sb.WriteString(fmt.Sprintf("user%04d,acme,%s\n", i, ip))
		}
		p := filepath.Join(t.TempDir(), "users.csv")
		if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if out := a.cli(t, "user", "import", csvOf(0, 1000, -1)); !strings.Contains(out, "imported 1000 user(s)") {
		t.Fatalf("import: %s", out)
	}
	users := func(s *server) int { return strings.Count(s.cli(t, "user", "list"), "\nuser") }
	waitFor(t, "B to list the 1000 users", func() bool { return users(b) == 1000 })
	out, err := a.cliErr("user", "import", csvOf(1000, 500, 1400))
	if err == nil || !strings.Contains(err.Error(), "nothing imported") {
		t.Fatalf("import with a bad line: %v\n%s", err, out)
	}
	if got := users(a); got != 1000 {
		t.Errorf("after a refused import: got %d users, want 1000", got)
	}
}
