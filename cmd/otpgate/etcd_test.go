package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/secret"
)

// etcdNodeConfig is a node of a cluster on etcd; {{etcd}} is the list of
// its members' client URLs (see endpointList) and {{key}} the key file
// every node shares.
const etcdNodeConfig = `
radius: {listen: ["127.0.0.1:0"]}
store:
  path: "{{dir}}/node.db"
  key_file: "{{key}}"
  backend: etcd
  etcd: {endpoints: [{{etcd}}], prefix: /otpgate-test/}
cluster: {node_name: "{{node}}"}
clients:
  - {name: gw, address: 127.0.0.1/32, secret: testing123, tenant: acme, client_ip_attribute: Calling-Station-Id}
tenants:
  - {name: acme, mode: required, office_networks: [192.0.2.0/24], methods: [totp], reconnect_window: 0s}
delivery: {allow_console: true, sms: [console]}
`

func startEtcdNode(t *testing.T, endpoints []string, key, node string) *server {
	t.Helper()
	r := strings.NewReplacer("{{etcd}}", endpointList(endpoints), "{{key}}", key, "{{node}}", node)
	return startServer(t, r.Replace(etcdNodeConfig))
}

// TestClusterOnEtcd runs two nodes on one etcd: a user added at A logs
// in at B, a TOTP code accepted at A is refused at B, a node with
// another key refuses to start, and while etcd is down a node accepts
// office logins and answers codes with the unavailable text, until etcd
// is back.
func TestClusterOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a := startEtcdNode(t, etcd.Endpoints(), key, "a")
	b := startEtcdNode(t, etcd.Endpoints(), key, "b")

	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	waitFor(t, "B to see tom", func() bool { return shows(b, "tom", "totp: active") })

	expect(t, mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "192.0.2.9"}), radius.CodeAccessAccept, "HQ IP Allowed!")
	code := totpNow(t)
	chA := mustExchange(t, a.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.5"})
	chB := mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.6"})
	expect(t, chA, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	expect(t, chB, radius.CodeAccessChallenge, "Enter the code from your authenticator app")
	expect(t, answerTo(t, a, chA, "203.0.113.5", code), radius.CodeAccessAccept, "")
	if got := answerTo(t, b, chB, "203.0.113.6", code); got.Code == radius.CodeAccessAccept {
		t.Fatal("the code A accepted was accepted again at B")
	}
	if audit := a.cli(t, "audit", "--json", "--user", "tom"); !strings.Contains(audit, `"node":"a"`) {
		t.Errorf("A's audit entries do not name node a:\n%s", audit)
	}

	// No key file, or another key: refused, with a line that says what
	// to do.
	other := t.TempDir()
	cfg := filepath.Join(other, "otpgate.yaml")
	otherKey := filepath.Join(other, "other.key")
	r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", otherKey, "{{node}}", "c", "{{dir}}", other)
	if err := os.WriteFile(cfg, []byte(r.Replace(etcdNodeConfig)+"\nhttp: {listen: \"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"is missing", "holds key"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, []string{"serve", "--config", cfg}, strings.NewReader(""), io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "every node of a cluster uses the same key file") {
			t.Fatalf("a node whose key file %s: got %v", want, err)
		}
		if want == "is missing" {
			if _, err := secret.Create(otherKey, nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	// etcd down: office logins go on from B's copy; a code is refused.
	etcd.Stop()
	waitFor(t, "B to notice etcd is down", func() bool { return strings.Contains(b.logText(), "etcd is unavailable") })
	expect(t, mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "192.0.2.9"}), radius.CodeAccessAccept, "HQ IP Allowed!")
	// Challenges live in etcd too, so a login that needs a code cannot
	// even be challenged: it gets the unavailable text at once.
	expect(t, mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.7"}),
		radius.CodeAccessReject, "Login is unavailable at the moment. Please try again later.")

	etcd.Restart(t)
	waitFor(t, "B to see etcd again", func() bool { return strings.Contains(b.logText(), "etcd is available again") })
	ch := mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.7"})
	expect(t, answerTo(t, b, ch, "203.0.113.7", totpAt(t, testSecret, time.Now().Add(30*time.Second))), radius.CodeAccessAccept, "")
}

// endpointList is endpoints as the items of a YAML flow list.
func endpointList(endpoints []string) string {
	q := make([]string, len(endpoints))
	for i, e := range endpoints {
		q[i] = `"` + e + `"`
	}
	return strings.Join(q, ", ")
}

func answerTo(t *testing.T, s *server, ch *radius.Packet, ip, code string) *radius.Packet {
	t.Helper()
	return mustExchange(t, s.addrs[0], request{user: "tom", password: code, callingStation: ip, state: string(rfc2865.State_Get(ch))})
}

// waitFor waits up to 20 s for cond, which another process or goroutine
// makes true.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
