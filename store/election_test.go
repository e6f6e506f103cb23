package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/store"
)

// TestWritesWaitOutAnElection kills the etcd leader of three members
// while a node writes (as each answered code does): every write made
// during the election waits for the new leader within its time and
// succeeds, instead of failing at once with ErrUnavailable because one
// check or one try failed.
func TestWritesWaitOutAnElection(t *testing.T) {
	c := etcdtest.Start(t, 3)
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{Node: "a",
		// The harness's members wait 2.5 s to 5 s before electing anew
		// (--election-timeout 2500); a write waits longer than that.
		Etcd: &store.Etcd{Endpoints: c.Endpoints(), Prefix: testPrefix(t), Retry: 20 * time.Millisecond, WriteWait: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	put := func(i int) error {
		return db.Update(func(tx *store.Tx) error { return tx.PutMeta("election", []byte(fmt.Sprint(i))) })
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	cli := c.Client(t)
	leader := -1
	for i, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no member says it is the leader")
	}
	c.Kill(leader)
	// Writes one after another until one ran after the others have a new
	// leader; each must succeed.
	for i := 1; ; i++ {
		if err := put(i); err != nil {
			t.Fatalf("write %d after the leader was killed: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, c.Members[(leader+1)%3].Client)
		cancel()
		if err == nil && st.Leader != 0 && i > 3 {
			break
		}
	}
	if err := db.Unavailable(); err != nil {
		t.Errorf("after the election the node still says %v", err)
	}
}
