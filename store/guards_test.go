package store_test

import (
	"fmt"
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
