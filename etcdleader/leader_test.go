package etcdleader_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/etcdleader"
	"github.com/otpgate/otpgate/etcdtest"
)

func dialer(ctx context.Context, ep string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(), Context: ctx})
}

// txnsServed is how many Txn calls the member at ep has answered.
func txnsServed(t *testing.T, ep string) int {
	t.Helper()
	n, _ := etcdtest.Metric(t, ep, "grpc_server_handled_total", `grpc_method="Txn"`)
	return int(n)
}

// leaderOf asks the members which endpoint leads.
func leaderOf(t *testing.T, cli *clientv3.Client, eps []string) string {
	t.Helper()
	for _, ep := range eps {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return ep
		}
	}
	return ""
}

// waitLeader polls until kv routes to an endpoint.
func waitLeader(t *testing.T, kv *etcdleader.KV) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for kv.Leader() == "" {
		if time.Now().After(deadline) {
			t.Fatal("no leader found in 30 s")
		}
		time.Sleep(10 * time.Millisecond) // polling for a condition
	}
	return kv.Leader()
}

// TestTransactionsReachTheLeaderOnly: every transaction goes to the member
// that leads, none to the others (a client of every endpoint spreads
// them over all three).
func TestTransactionsReachTheLeaderOnly(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	eps := etcd.Endpoints()
	kv := etcdleader.New(cli, eps, dialer, time.Hour)
	defer kv.Close()
	got := waitLeader(t, kv)
	if want := leaderOf(t, cli, eps); got != want {
		t.Fatalf("routes to %s, the leader is at %s", got, want)
	}
	before := map[string]int{}
	for _, ep := range eps {
		before[ep] = txnsServed(t, ep)
	}
	const n = 30
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		resp, err := kv.Txn(context.Background()).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, "v")).Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("txn %d: %v %v", i, resp, err)
		}
	}
	for _, ep := range eps {
		d := txnsServed(t, ep) - before[ep]
		switch {
		case ep == got && d < n:
			t.Errorf("the leader %s answered %d of %d transactions", ep, d, n)
		case ep != got && d != 0:
			t.Errorf("the follower %s answered %d transactions", ep, d)
		}
	}
	// For comparison, the same through the client of every endpoint
	// reaches more than one member: the test sees where requests go.
	for _, ep := range eps {
		before[ep] = txnsServed(t, ep)
	}
	for i := range n {
		if _, err := cli.Txn(context.Background()).Then(clientv3.OpPut(fmt.Sprintf("j%d", i), "v")).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	reached := 0
	for _, ep := range eps {
		if txnsServed(t, ep) > before[ep] {
			reached++
		}
	}
	if reached < 2 {
		t.Errorf("the plain client's transactions reached %d member(s); the metric does not show where requests go", reached)
	}
}

// TestLeaderKilled: when the leader dies, transactions find the new one;
// the write that met the dead connection fails (its caller retries, as
// the store does) and nothing written is lost.
func TestLeaderKilled(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	eps := etcd.Endpoints()
	kv := etcdleader.New(cli, eps, dialer, time.Hour)
	defer kv.Close()
	old := waitLeader(t, kv)
	for i, m := range etcd.Members {
		if m.Client == old {
			etcd.Kill(i)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := kv.Txn(ctx).Then(clientv3.OpPut("after", strconv.Itoa(i))).Commit()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write went through in a minute after the leader was killed: %v", err)
		}
	}
	for {
		l := kv.Leader()
		if l != "" && l != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still routing to %q after the leader %s was killed", l, old)
		}
		time.Sleep(10 * time.Millisecond) // polling for a condition
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "after")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the write after the kill: %v %v", resp, err)
	}
}

// TestNoEndpointDialled: when no single endpoint can be dialled, no
// leader is known and transactions go through the client of every
// endpoint, as without routing.
func TestNoEndpointDialled(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	dials := make(chan string, 100)
	kv := etcdleader.New(cli, etcd.Endpoints(), func(_ context.Context, ep string) (*clientv3.Client, error) {
		dials <- ep
		return nil, fmt.Errorf("refused")
	}, time.Hour)
	defer kv.Close()
	for range etcd.Endpoints() {
		<-dials // the first search has tried every endpoint
	}
	if l := kv.Leader(); l != "" {
		t.Fatalf("routes to %q with no connection of its own", l)
	}
	resp, err := kv.Txn(context.Background()).Then(clientv3.OpPut("k", "v")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("txn: %v %v", resp, err)
	}
}
