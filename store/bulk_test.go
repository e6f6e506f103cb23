package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/etcdtest"
)

func openBulkNode(t *testing.T, endpoints []string, prefix string) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "node.db"), Options{Etcd: &Etcd{Endpoints: endpoints, Prefix: prefix}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func putUsers(n int, tenant string) func(*Tx) error {
	return func(tx *Tx) error {
		for i := range n {
			name := fmt.Sprintf("user%04d", i)
			if _, err := tx.User(name); err == nil {
				return fmt.Errorf("%s exists", name)
			}
			if err := tx.PutUser(User{Name: name, Tenant: tenant}); err != nil {
				return err
			}
		}
		return nil
	}
}

// countUsers counts the users under prefix in etcd itself.
func countUsers(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix+"users/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestBulkWrite writes 1000 users in one transaction on etcd, more than
// the 128 operations etcd takes in one: they are all there, seen by
// another node; a chunk that finds a key changed by another node undoes
// the chunks before it; a writer that dies half way is undone by the next
// node to open the store. No undo record is left behind.
func TestBulkWrite(t *testing.T) {
	endpoints := etcdtest.Shared(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	leftovers := func(prefix string) {
		t.Helper()
		resp, err := cli.Get(context.Background(), livePrefix(prefix), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count != 0 {
			t.Errorf("%d keys left under %s (%v)", resp.Count, livePrefix(prefix), err)
		}
	}

	t.Run("all", func(t *testing.T) {
		prefix := fmt.Sprintf("/bulk-all-%d/", time.Now().UnixNano())
		a, b := openBulkNode(t, endpoints, prefix), openBulkNode(t, endpoints, prefix)
		if err := a.Update(putUsers(1000, "acme")); err != nil {
			t.Fatal(err)
		}
		if got := countUsers(t, cli, prefix); got != 1000 {
			t.Fatalf("got %d users in etcd, want 1000", got)
		}
		if err := b.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if u, err := b.ReadUser("user0999"); err != nil || u.User.Tenant != "acme" {
			t.Errorf("the other node reads user0999: %v", err)
		}
		leftovers(prefix)
	})

	t.Run("conflict", func(t *testing.T) {
		prefix := fmt.Sprintf("/bulk-conflict-%d/", time.Now().UnixNano())
		a := openBulkNode(t, endpoints, prefix)
		// After the first chunk, another node writes a user that a later
		// chunk writes too: that chunk fails, the first is undone, and
		// the function, run again, sees the user and gives up.
		a.etcd.afterChunk = func(n int) {
			if n == 0 {
				if _, err := cli.Put(context.Background(), prefix+"users/user0500", `{"name":"user0500"}`); err != nil {
					t.Error(err)
				}
			}
		}
		err := a.Update(putUsers(1000, "acme"))
		if err == nil || !strings.Contains(err.Error(), "user0500 exists") {
			t.Fatalf("got %v, want user0500 exists", err)
		}
		if got := countUsers(t, cli, prefix); got != 1 {
			t.Errorf("got %d users in etcd, want only the other node's", got)
		}
		leftovers(prefix)
	})

	t.Run("writer dies", func(t *testing.T) {
		prefix := fmt.Sprintf("/bulk-dies-%d/", time.Now().UnixNano())
		a := openBulkNode(t, endpoints, prefix)
		a.etcd.afterChunk = func(n int) {
			if n == 2 {
				runtime.Goexit() // the writer is gone, its marker and records left
			}
		}
		done := make(chan struct{})
		go func() { defer close(done); a.Update(putUsers(1000, "acme")) }()
		<-done
		if got := countUsers(t, cli, prefix); got != 3*bulkChunk {
			t.Fatalf("got %d users in etcd half way, want %d", got, 3*bulkChunk)
		}
		// Under way: a node that opens now leaves it alone.
		openBulkNode(t, endpoints, prefix)
		if got := countUsers(t, cli, prefix); got != 3*bulkChunk {
			t.Fatalf("a bulk write under way was undone: %d users", got)
		}
		// Its lease ends, as when the writer's process died a minute ago.
		resp, err := cli.Get(context.Background(), livePrefix(prefix)+"bulk/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("marker: %v %v", resp, err)
		}
		if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
			t.Fatal(err)
		}
		b := openBulkNode(t, endpoints, prefix)
		if got := countUsers(t, cli, prefix); got != 0 {
			t.Errorf("got %d users after the next node opened, want the dead writer's undone", got)
		}
		leftovers(prefix)
		if err := b.Update(putUsers(300, "beta")); err != nil {
			t.Fatal(err)
		}
		if got := countUsers(t, cli, prefix); got != 300 {
			t.Errorf("got %d users, want 300", got)
		}
	})
}
