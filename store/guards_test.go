package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

// TestSignInFailuresPruned: the sign-in page's records of wrong codes are
// in the store, survive a restart, and go once spent: a flood of names
// leaves nothing behind after its window, while a running lock stays.
func TestSignInFailuresPruned(t *testing.T) {
	path := tempPath(t)
	db := open(t, path)
	window := 15 * time.Minute
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutSignInFailures("victim", store.SignInFailures{Window: window, LockedUntil: epoch.Add(time.Hour)}, epoch)
	})
	for i := range 500 {
		mustUpdate(t, db, func(tx *store.Tx) error {
			return tx.PutSignInFailures(fmt.Sprintf("flood%d", i), store.SignInFailures{Failures: []time.Time{epoch}, Window: window}, epoch)
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	mustView(t, db, func(tx *store.Tx) error {
		if f := tx.SignInFailures("flood7"); len(f.Failures) != 1 || f.Window != window {
			t.Errorf("flood7 after a restart: %+v", f)
		}
		return nil
	})
	n, err := db.Prune(epoch.Add(window), epoch)
	if err != nil {
		t.Fatal(err)
	}
	if n != 500 {
		t.Errorf("Prune at the end of the window removed %d records, want the 500 spent", n)
	}
	mustView(t, db, func(tx *store.Tx) error {
		if f := tx.SignInFailures("victim"); !f.LockedUntil.Equal(epoch.Add(time.Hour)) {
			t.Errorf("victim: the lock went with the flood: %+v", f)
		}
		if f := tx.SignInFailures("flood7"); len(f.Failures) != 0 {
			t.Errorf("flood7 kept after its window: %+v", f)
		}
		return nil
	})
	// A spent record is deleted when written, not kept.
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutSignInFailures("victim", store.SignInFailures{}, epoch)
	})
	if n, err := db.Prune(epoch.Add(2*time.Hour), epoch); err != nil || n != 0 {
		t.Errorf("Prune after the victim's record was cleared: %d, %v; want 0", n, err)
	}
}

// TestFarStepsPruned: the far steps of a user are read with the user and
// go once no window reaches them.
func TestFarStepsPruned(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.PutUser(store.User{Name: "tom"}) })
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.AddFarStep("tom", 100, epoch.Add(time.Minute), epoch) })
	r, err := db.ReadUser("tom")
	if err != nil {
		t.Fatal(err)
	}
	if !r.FarStep(100) || r.FarStep(101) {
		t.Errorf("FarStep(100), FarStep(101) = %v, %v; want true, false", r.FarStep(100), r.FarStep(101))
	}
	if err := db.CommitIf(r, nil); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.AddFarStep("tom", 105, epoch.Add(time.Hour), epoch) })
	if err := db.CommitIf(r, nil); err != store.ErrConflict {
		t.Errorf("a far step added since the read: CommitIf = %v, want ErrConflict", err)
	}
	if n, err := db.Prune(epoch.Add(2*time.Minute), epoch); err != nil || n != 0 {
		t.Errorf("Prune with step 105 still reachable: %d, %v; want 0", n, err)
	}
	if n, err := db.Prune(epoch.Add(2*time.Hour), epoch); err != nil || n != 1 {
		t.Errorf("Prune once neither is reachable: %d, %v; want 1", n, err)
	}
}

// TestConformGuardsAcrossNodes: on both engines, a far step recorded at
// one node makes another node's earlier read of the user conflict, so
// that the answer is judged again with it; and sign-in counts made at
// two nodes at once add up, none lost.
func TestConformGuardsAcrossNodes(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		r := waitRead(t, b, "alice", func(store.Read) bool { return true })
		if r.FarStep(20) {
			t.Fatal("step 20 far before it was told")
		}
		if err := a.CommitIf(r, func(tx *store.Tx) error {
			return tx.AddFarStep("alice", 20, epoch.Add(time.Hour), epoch)
		}); err != nil {
			t.Fatalf("CommitIf adding a far step: %v", err)
		}
		err := b.CommitIf(r, func(tx *store.Tx) error { return tx.UseStep("alice", 20, epoch.Add(time.Hour)) })
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("B accepting step 20 on a read from before it was told far: got %v, want ErrConflict", err)
		}
		if r, err := b.ReadUser("alice"); err != nil || !r.FarStep(20) || r.User.TOTP.LastStep != 10 {
			t.Fatalf("B's read after the conflict: far(20) %v, last step %d, %v; want far, 10", r.FarStep(20), r.User.TOTP.LastStep, err)
		}

		const tries = 16
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range tries {
			wg.Go(func() {
				<-start
				err := []*store.DB{a, b}[i%2].Update(func(tx *store.Tx) error {
					f := tx.SignInFailures("bob")
					f.Failures, f.Window = append(f.Failures, epoch), time.Hour
					return tx.PutSignInFailures("bob", f, epoch)
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		caughtUp(t, a)
		mustView(t, a, func(tx *store.Tx) error {
			if n := len(tx.SignInFailures("bob").Failures); n != tries {
				t.Errorf("%d counts at two nodes at once: %d kept, want all", tries, n)
			}
			return nil
		})
	})
}
