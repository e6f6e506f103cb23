package live_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
)

// TestSendingLockNotLeftBehind: a release that etcd does not take (etcd
// down for a moment as the code went out) must not leave the user's lock
// held for as long as the node lives: the node's lease is kept alive, so
// the key under it would keep every other node's login of that user
// waiting, and answering "busy", until this node happens to lock the same
// user again. Within the lease's ten seconds another node goes on.
func TestSendingLockNotLeftBehind(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/stuck/", &now)
	a.Timeout = time.Second

	release, err := a.Sending(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	etcd.Stop()
	release() // fails: etcd is down
	etcd.Restart(t)

	start := time.Now()
	wait, cancel := context.WithTimeout(context.Background(), 14*time.Second)
	defer cancel()
	r, err := b.Sending(wait, "alice")
	if err != nil {
		t.Fatalf("B after A's release failed: %v after %v; A's lock outlives its lease's ten seconds", err, time.Since(start).Round(time.Millisecond))
	}
	r()
	t.Logf("B went on after %v", time.Since(start).Round(time.Millisecond))
}

// TestSendingFailsAtOnceWhenEtcdIsDown: with etcd out of reach, taking
// the lock fails within the node's etcd timeout, as putting and taking
// challenges do (the usual "unavailable"), and at once when etcd is known
// hopeless; it does not wait out the whole of ctx (which policy tells
// the user as "busy": another node sending), holding the login's slot.
func TestSendingFailsAtOnceWhenEtcdIsDown(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, _, _ := sealedNodes(t, etcd, "/down/", &now)
	a.Timeout = time.Second
	release, err := a.Sending(context.Background(), "alice") // the node's lease exists
	if err != nil {
		t.Fatal(err)
	}
	release()
	etcd.Stop()
	t.Cleanup(func() { etcd.Restart(t) })

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	_, err = a.Sending(ctx, "alice")
	took := time.Since(start)
	if err == nil || ctx.Err() != nil || took > 3*time.Second {
		t.Fatalf("etcd down: got %v after %v (ctx %v), want an error within the etcd timeout", err, took.Round(time.Millisecond), ctx.Err())
	}

	a.Hopeless = func() error { return errors.New("etcd down for a while") }
	start = time.Now()
	if _, err := a.Sending(ctx, "alice"); err == nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("etcd hopeless: got %v after %v, want an error at once", err, time.Since(start))
	}
}

// TestSendingWaitEndsWithItsContext: a node waiting for another's lock
// when etcd goes down gives up when its time is out, not when etcd is
// back.
func TestSendingWaitEndsWithItsContext(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/hang/", &now)
	a.Timeout, b.Timeout = time.Second, time.Second
	release, err := a.Sending(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	before := watchers(t, etcd.Endpoints()[0])
	start := time.Now()
	go func() {
		_, err := b.Sending(ctx, "alice")
		done <- err
	}()
	// Once B watches for the lock's release, etcd goes away.
	for watchers(t, etcd.Endpoints()[0]) <= before {
		time.Sleep(10 * time.Millisecond) // polling for a condition
	}
	etcd.Stop()
	select {
	case err := <-done:
		t.Logf("B gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		etcd.Restart(t)
		err := <-done
		t.Fatalf("B still waiting %v after its time was out (3 s); went on only when etcd was back, after %v: %v", time.Since(start)-3*time.Second, time.Since(start).Round(time.Millisecond), err)
	}
	etcd.Restart(t)
}

// watchers is how many watches the etcd member at ep serves.
func watchers(t *testing.T, ep string) int {
	t.Helper()
	n, ok := etcdtest.Metric(t, ep, "etcd_debugging_mvcc_watcher_total")
	if !ok {
		t.Fatal("no etcd_debugging_mvcc_watcher_total in the member's metrics")
	}
	return int(n)
}

// TestSendingAfterClose: a login still deciding when the node stops
// takes no new lease, which nothing would revoke or stop renewing: its
// lock and the lease's keep-alive would outlive the node's Close.
func TestSendingAfterClose(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, _, cli := sealedNodes(t, etcd, "/closed/", &now)
	a.Close()
	before, err := cli.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := a.Sending(context.Background(), "alice"); err == nil {
		r()
		t.Error("Sending after Close: took a lock")
	}
	after, err := cli.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Leases) > len(before.Leases) {
		t.Errorf("Sending after Close granted a lease: %d leases, %d before", len(after.Leases), len(before.Leases))
	}
}

// TestSendingHolderKilled: a node that dies holding a user's lock (its
// lease no longer renewed, nothing revoked: SIGKILL) delays that user's
// logins at another node by at most the lease's ten seconds, within
// policy's wait of fifteen.
func TestSendingHolderKilled(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	b := live.NewCluster(etcd.Client(t), "/killed/")
	cliA, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a := live.NewCluster(cliA, "/killed/")
	for _, n := range []*live.Cluster{a, b} {
		n.Now = func() time.Time { return now }
	}
	t.Cleanup(b.Close)
	if _, err := a.Sending(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	cliA.Close() // dies: no more keep-alives, no revoke
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := b.Sending(ctx, "alice")
	if err != nil {
		t.Fatalf("B after A died holding the lock: %v after %v", err, time.Since(start))
	}
	r()
	if took := time.Since(start); took > 11*time.Second {
		t.Errorf("B waited %v", took)
	}
	t.Logf("B went on %v after A died", time.Since(start).Round(time.Millisecond))
}
