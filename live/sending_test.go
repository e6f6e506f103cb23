package live_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
)

// TestSendingOneNodeAtATime: while node A sends a user a code, node B
// waits for the same user (and gives up when its time is out), not for
// another user; B goes on once A is done, and at once when A stops
// (Close revokes the lease of its locks) instead of after the lease's
// ten seconds.
func TestSendingOneNodeAtATime(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/sending/", &now)

	release, err := a.Sending(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = b.Sending(short, "alice")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("B while A sends to alice: got %v, want to wait until its time is out", err)
	}
	other, err := b.Sending(context.Background(), "bob")
	if err != nil {
		t.Fatalf("B for another user: %v", err)
	}
	other()

	got := make(chan error, 1)
	go func() {
		r, err := b.Sending(context.Background(), "alice")
		if err == nil {
			defer r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("B after A released: %v", err)
	}

	// A holds it again and stops without releasing: B goes on well
	// within the lease's ten seconds.
	if _, err := a.Sending(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.Close()
	wait, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.Sending(wait, "alice")
	if err != nil {
		t.Fatalf("B after A stopped holding alice's lock: %v (after %v)", err, time.Since(start))
	}
	r()
}

// TestTakenAMomentAgo: a record challenge taken at one node is, for a few
// seconds, ErrTaken at the other (the copy of one answer a gateway sent to
// both), and unknown after.
func TestTakenAMomentAgo(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/taken/", &now)
	c := live.Challenge{ID: "abcd", User: "alice", Client: "vpn", Method: "sms", CodeHash: []byte("h"), Salt: "abcd", Expires: epoch.Add(5 * time.Minute)}
	must(t, a.Put(&c))
	if _, err := a.Take(c.ID, "alice", "vpn"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Take(c.ID, "alice", "vpn"); !errors.Is(err, live.ErrTaken) {
		t.Fatalf("taken at A, then at B at once: got %v, want ErrTaken", err)
	}
	if _, err := b.Take(c.ID, "mallory", "vpn"); errors.Is(err, live.ErrTaken) {
		t.Fatalf("another user's answer to it: got %v, not ErrTaken", err)
	}
	now = now.Add(6 * time.Second)
	if _, err := b.Take(c.ID, "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
		t.Fatalf("seconds later: got %v, want ErrNotFound", err)
	}
}
