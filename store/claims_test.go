package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/store"
)

// TestEtcdClaimsInTheStepsKey: with etcd a user's claims are kept in
// their key of the newest step, beside it: the step stays readable as it
// was, a claim is refused again while kept, one past its Until goes with
// the next write, and no more than 64 are kept (the oldest go). Opening
// the store records its format in etcd.
func TestEtcdClaimsInTheStepsKey(t *testing.T) {
	ends := etcdtest.Shared(t)
	prefix := testPrefix(t)
	now := time.Now()
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{
		Now:  func() time.Time { return now },
		Etcd: &store.Etcd{Endpoints: ends, Prefix: prefix, Retry: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	claim := func(id string, until time.Time) error {
		return db.Update(func(tx *store.Tx) error { return tx.Claim(store.Claim{User: "Alice", ID: id, Until: until}) })
	}
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}}})
	})
	if err := claim("x", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.UseStep("alice", 5, now.Add(time.Hour)) })
	if got := db.UsedStep("alice"); got != 5 {
		t.Fatalf("newest step beside a claim: got %d, want 5", got)
	}
	if r, err := db.ReadUser("alice"); err != nil || r.User.TOTP.LastStep != 5 {
		t.Fatalf("ReadUser beside a claim: got %+v, %v; want step 5", r.User.TOTP, err)
	}
	if err := claim("x", now.Add(time.Minute)); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("claimed again (by another spelling of the name): got %v, want ErrClaimed", err)
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.UseStep("alice", 6, now.Add(time.Hour)) })
	if err := claim("x", now.Add(time.Minute)); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("claimed again after a step was used: got %v, want ErrClaimed (the step's write keeps the claims)", err)
	}
	now = now.Add(2 * time.Minute) // x's Until has passed: it goes with the next write
	if err := claim("y", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := claim("x", now.Add(time.Minute)); err != nil {
		t.Fatalf("a claim past its Until: got %v, want it gone", err)
	}
	for i := range 70 {
		if err := claim(fmt.Sprint("many", i), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := claim("many69", now.Add(time.Minute)); !errors.Is(err, store.ErrClaimed) {
		t.Errorf("the newest claim: got %v, want ErrClaimed", err)
	}
	if err := claim("many0", now.Add(time.Minute)); err != nil {
		t.Errorf("the oldest of 70: got %v, want it gone (64 kept)", err)
	}
	if got := db.UsedStep("alice"); got != 6 {
		t.Errorf("newest step after the claims: got %d, want 6", got)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ends, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), prefix+"meta/format")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.Itoa(store.Format) {
		t.Errorf("meta/format in etcd: got %v (%v), want %d", resp.Kvs, err, store.Format)
	}
	// A build older than the store (told here by a newer format) refuses it.
	if _, err := cli.Put(context.Background(), prefix+"meta/format", strconv.Itoa(store.Format+1)); err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(filepath.Join(t.TempDir(), "b.db"), store.Options{Etcd: &store.Etcd{Endpoints: ends, Prefix: prefix}})
	if err == nil {
		other.Close()
		t.Fatal("a node opened a store of a newer format")
	}
	if !errors.Is(err, store.ErrNewerFormat) {
		t.Errorf("got %v, want ErrNewerFormat", err)
	}
}
