package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// TestClusterNodesShareOneTruth runs two nodes' stores and engines, wired
// as serve wires them, on one real three-member etcd: a TOTP user added
// through A answers at B a challenge A asked, the code B accepted is
// refused at A, and both nodes' heartbeats list them, alike.
func TestClusterNodesShareOneTruth(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	raw := make([]byte, 32)
	key, err := secret.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	tenant := policy.Tenant{Name: "acme", Mode: policy.ModeRequired, Methods: []string{policy.MethodTOTP},
		CodeDigits: 6, CodeTTL: 3 * time.Minute, MaxAttempts: 3, Messages: policy.DefaultMessages()}
	var engines []*policy.Engine
	var dbs []*store.DB
	for range 2 {
		db, err := store.Open(filepath.Join(t.TempDir(), "otpgate.db"), store.Options{Etcd: &store.Etcd{Endpoints: etcd.Endpoints()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		chs, aps, stop := liveState(db, key, nil, slog.New(slog.DiscardHandler))
		t.Cleanup(stop)
		dbs = append(dbs, db)
		engines = append(engines, policy.New(policy.Config{Store: db, Key: key, Tenants: []policy.Tenant{tenant},
			Challenges: chs, Approvals: aps}))
	}
	a, b := engines[0], engines[1]
	sealed, err := key.Seal([]byte(testSecret), "totp:tina")
	if err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Update(func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "tina", Tenant: "acme", Method: policy.MethodTOTP, TOTP: &store.TOTP{Sealed: sealed}})
	}); err != nil {
		t.Fatal(err)
	}
	req := policy.Request{Client: "vpn", Tenant: "acme", FirstFactor: policy.FirstFactorGateway, User: "tina",
		IP: netip.MustParseAddr("192.0.2.44")}
	ctx := context.Background()
	// B's copy of the store follows A's write through its watch.
	var ch policy.Result
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ch = b.Decide(ctx, req); ch.Decision == policy.Challenge || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for the watch to deliver, not for time
	}
	if ch.Decision != policy.Challenge {
		t.Fatalf("login at B: got %s (%s), want a challenge", ch.Decision, ch.Reason)
	}
	code, err := otp.TOTPCode(testSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ans := req
	ans.State, ans.Password = ch.State, code
	if got := a.Decide(ctx, ans); got.Decision != policy.Accept {
		t.Fatalf("B's challenge answered at A: got %s (%s), want accept", got.Decision, got.Reason)
	}
	// The same code at B, on a fresh challenge: refused, its step used.
	ch = b.Decide(ctx, req)
	ans.State = ch.State
	if got := b.Decide(ctx, ans); got.Decision == policy.Accept {
		t.Fatalf("the code accepted at A was accepted again at B (%s)", got.Reason)
	}

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := filepath.Join(t.TempDir(), "otpgate.yaml")
	if err := os.WriteFile(cfg, []byte("cluster: {node_name: x}\nstore: {backend: etcd}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"otp-a:1812", "otp-b:1812"} {
		go heartbeat(hctx, dbs[i], name, cfg, time.Now, slog.New(slog.DiscardHandler))
	}
	cli, prefix := dbs[0].Shared()
	var nodes []cluster.Node
	for deadline := time.Now().Add(10 * time.Second); len(nodes) < 2 && time.Now().Before(deadline); {
		nodes, _ = cluster.Alive(ctx, cli, prefix)
		time.Sleep(20 * time.Millisecond) // waiting for both beats
	}
	var out strings.Builder
	cluster.Report(&out, nodes, time.Now(), 0)
	if len(nodes) != 2 || nodes[0].Name != "otp-a:1812" || cluster.Differ(nodes) {
		t.Errorf("cluster status: got\n%s\nwant both nodes, alike", out.String())
	}
}
