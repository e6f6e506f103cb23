package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"layeh.com/radius"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/etcdtest"
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
func offlineConfig(t *testing.T, endpoints []string, key, node string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "otpgate.yaml")
	r := strings.NewReplacer("{{etcd}}", endpointList(endpoints), "{{key}}", key, "{{node}}", node, "{{dir}}", dir)
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
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoints(), key, "node-a")
	startEtcdNode(t, etcd.Endpoints(), key, "node-b")
	direct := offlineConfig(t, etcd.Endpoints(), key, "admin-host")

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
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), Logger: zap.NewNop()})
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
	bbolt := strings.Replace(etcdNodeConfig, "  backend: etcd\n  etcd: {endpoints: [{{etcd}}], prefix: /otpgate-test/}\n", "", 1)
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
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoints(), key, "a")
	b := startEtcdNode(t, etcd.Endpoints(), key, "b")
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

// TestAuditAcrossNodes: otpgate audit at A shows the decisions made at B
// (from etcd, where each node writes its entries under a lease of
// audit.cluster_keep) merged by time with A's own, and the other way
// round, each entry naming its node.
func TestAuditAcrossNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	cfg := strings.Replace(etcdNodeConfig, "delivery:", "audit: {cluster_keep: 2h}\ndelivery:", 1)
	node := func(name string) *server {
		r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", name)
		return startServer(t, r.Replace(cfg))
	}
	a, b := node("a"), node("b")
	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	waitFor(t, "B to see tom", func() bool { return shows(b, "tom", "totp: active") })
	expect(t, mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "192.0.2.9"}), radius.CodeAccessAccept, "HQ IP Allowed!")
	expect(t, mustExchange(t, a.addrs[0], request{user: "tom", password: "x", callingStation: "192.0.2.10"}), radius.CodeAccessAccept, "HQ IP Allowed!")

	// The whole story at either node: added at A, accepted at B, then at A.
	want := []string{`"decision":"admin".*"op":"user add".*"node":"a"`, `"op":"user totp".*"node":"a"`, `"ip":"192.0.2.9".*"node":"b"`, `"ip":"192.0.2.10".*"node":"a"`}
	for _, s := range []*server{a, b} {
		var got string
		waitFor(t, "the other node's entries", func() bool {
			got = s.cli(t, "audit", "--json", "--user", "tom")
			return strings.Count(got, "\n") == 4
		})
		lines := strings.Split(strings.TrimSpace(got), "\n")
		for i, w := range want {
			if !regexp.MustCompile(w).MatchString(lines[i]) {
				t.Errorf("audit line %d: got %s, want %s", i+1, lines[i], w)
			}
		}
	}
	if got := a.cli(t, "audit", "--user", "tom", "--limit", "1"); !strings.Contains(got, "192.0.2.10") || strings.Count(got, "\n") != 2 {
		t.Errorf("--limit 1: want the newest entry only:\n%s", got)
	}

	// In etcd, under a lease no longer than cluster_keep and an hour.
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/otpgate-test-live/audit/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("no audit entries in etcd: %v", err)
	}
	for _, kv := range resp.Kvs {
		ttl, err := cli.TimeToLive(context.Background(), clientv3.LeaseID(kv.Lease))
		if err != nil || ttl.TTL <= 0 || ttl.TTL > int64((3*time.Hour)/time.Second) {
			t.Errorf("%s: lease TTL %d s (%v), want at most 3h", kv.Key, ttl.TTL, err)
		}
	}
}
