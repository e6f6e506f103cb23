package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

// TestConformClaimNotWrittenByConflict: an answer's commit that finds the
// user changed (ErrConflict) has written nothing, its claim neither, so
// the answer judged again claims the State then; one whose claim is taken
// as well commits nothing either: etcd says ErrClaimed at once, bbolt
// ErrConflict first (its answer is judged again, then told ErrClaimed).
func TestConformClaimNotWrittenByConflict(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		until := time.Now().Add(time.Minute)
		claim := func(id string) func(*store.Tx) error {
			return func(tx *store.Tx) error { return tx.Claim(store.Claim{ID: id, Until: until}) }
		}
		stale := waitRead(t, b, "alice", func(store.Read) bool { return true })
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{2}, LastStep: 10}})
		})
		fresh := waitRead(t, b, "alice", func(r store.Read) bool { return r.User.TOTP.Sealed[0] == 2 })
		if err := b.CommitIf(stale, claim("c1")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf on a changed user: got %v, want ErrConflict", err)
		}
		if err := b.CommitIf(fresh, claim("c1")); err != nil {
			t.Fatalf("judged again: got %v, want the claim made (the conflicted commit wrote it?)", err)
		}
		if err := a.CommitIf(stale, claim("c1")); !errors.Is(err, store.ErrClaimed) && !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf on a changed user and a claimed State: got %v, want ErrClaimed or ErrConflict", err)
		}
		fresh = waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.Sealed[0] == 2 })
		if err := a.CommitIf(fresh, claim("c1")); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("judged again on a claimed State: got %v, want ErrClaimed", err)
		}
	})
}
