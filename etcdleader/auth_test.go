package etcdleader_test

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/etcdleader"
	"github.com/otpgate/otpgate/etcdtest"
)

// withAuth turns authentication on in etcd's cluster, with a user that
// may read and write keys but is no administrator (as otpgate's user).
func withAuth(t *testing.T, etcd *etcdtest.Cluster) func(ctx context.Context, ep ...string) (*clientv3.Client, error) {
	t.Helper()
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "rw"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "rw", "\x00", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "otp", "otppw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "otp", "rw"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	return func(ctx context.Context, ep ...string) (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{Endpoints: ep, DialTimeout: 2 * time.Second, Username: "otp", Password: "otppw", Logger: zap.NewNop(), Context: ctx})
	}
}

// TestAuth: with etcd's authentication on, a user who is no
// administrator finds the leader and writes through it; with a member
// down (whose client cannot log in), Close does not wait for the dials.
func TestAuth(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	dial := withAuth(t, etcd)
	eps := etcd.Endpoints()
	all, err := dial(context.Background(), eps...)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	kv := etcdleader.New(all, eps, func(ctx context.Context, ep string) (*clientv3.Client, error) { return dial(ctx, ep) }, time.Hour)
	got := waitLeader(t, kv)
	before := txnsServed(t, got)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = kv.Txn(ctx).Then(clientv3.OpPut("k", "v")).Commit()
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if txnsServed(t, got) == before {
		t.Errorf("the write did not go to the leader %s", got)
	}
	kv.Close()

	// Members down: clientv3.New logs in at once, and waits for its
	// dial timeout.
	etcd.Kill(1)
	etcd.Kill(2)
	dialling := make(chan struct{}) // closed when a killed member's dial has begun
	var once sync.Once
	kv = etcdleader.New(all, eps, func(ctx context.Context, ep string) (*clientv3.Client, error) {
		if ep == eps[1] {
			once.Do(func() { close(dialling) })
		}
		return dial(ctx, ep)
	}, time.Hour)
	<-dialling
	start := time.Now()
	kv.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}
