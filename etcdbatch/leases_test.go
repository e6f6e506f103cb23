package etcdbatch_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdbatch"
	"github.com/otpgate/otpgate/etcdtest"
)

// TestLeases: times in one bucket share a lease that outlasts them by the
// grace; a lease etcd has forgotten (revoked here) is replaced by With,
// and the write made under the new one.
func TestLeases(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	cli := etcd.Client(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC)
	l := etcdbatch.NewLeases(cli)
	l.Now = func() time.Time { return now }
	a, err := l.For(ctx, now.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.For(ctx, now.Add(20*time.Second))
	if err != nil || b != a {
		t.Fatalf("a time in the same bucket: got lease %x (%v), want %x", b, err, a)
	}
	c, err := l.For(ctx, now.Add(40*time.Second))
	if err != nil || c == a {
		t.Fatalf("a time in the next bucket: got lease %x (%v), want another than %x", c, err, a)
	}
	ttl, err := cli.TimeToLive(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket of 09:00:45 ends at 09:01:00, 55 s from now; a minute of grace.
	if ttl.TTL < 110 || ttl.TTL > 116 {
		t.Errorf("lease of the second bucket: TTL %d s, want about 115", ttl.TTL)
	}
	if _, err := cli.Revoke(ctx, a); err != nil {
		t.Fatal(err)
	}
	tries := 0
	resp, err := l.With(ctx, now.Add(10*time.Second), func(id clientv3.LeaseID) (*clientv3.TxnResponse, error) {
		tries++
		return cli.Txn(ctx).Then(clientv3.OpPut("/k", "v", clientv3.WithLease(id))).Commit()
	})
	if err != nil || !resp.Succeeded || tries != 2 {
		t.Fatalf("With after the lease was revoked: %v, %d tries; want success on the second", err, tries)
	}
	got, err := cli.Get(ctx, "/k")
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Lease == int64(a) || got.Kvs[0].Lease == 0 {
		t.Errorf("the key: %+v, %v; want it under a new lease", got.Kvs, err)
	}
}
