package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

func TestUsedStepsSurviveReopening(t *testing.T) {
	path := tempPath(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	until := epoch.Add(5 * time.Minute)
	if got := db.UsedStep("alice"); got != 0 {
		t.Fatalf("UsedStep before any: got %d, want 0", got)
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.UseStep("Alice", 100, until) })
	if got := db.UsedStep("ALICE"); got != 100 {
		t.Errorf("UsedStep after the commit: got %d, want 100", got)
	}
	if got := db.UsedStep("bob"); got != 0 {
		t.Errorf("bob's UsedStep: got %d, want 0", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	if got := db.UsedStep("alice"); got != 100 {
		t.Errorf("UsedStep after reopening: got %d, want 100", got)
	}
}

func TestPruneForgetsStepsThatRanOut(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		return errors.Join(
			tx.UseStep("alice", 100, epoch.Add(time.Minute)),
			tx.UseStep("bob", 50, epoch.Add(time.Minute)),
			tx.UseStep("alice", 104, epoch.Add(3*time.Minute)),
			// Written while the clock was a year ahead: it must not hold
			// up the entries after it.
			tx.UseStep("carol", 70, epoch.Add(365*24*time.Hour)),
			// Written later but running out sooner (a phone behind).
			tx.UseStep("dave", 60, epoch.Add(2*time.Minute)),
		)
	})
	// Two and a half minutes on: alice's first, bob's and dave's entries
	// have run out; alice's newer step and carol's stay.
	n, err := db.PruneSteps(epoch.Add(150 * time.Second))
	if err != nil || n != 3 {
		t.Fatalf("PruneSteps: got (%d, %v), want (3, nil)", n, err)
	}
	for user, want := range map[string]int64{"alice": 104, "bob": 0, "carol": 70, "dave": 0} {
		if got := db.UsedStep(user); got != want {
			t.Errorf("UsedStep(%s) after prune: got %d, want %d", user, got, want)
		}
	}
	if n, err := db.PruneSteps(epoch.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("second PruneSteps: got (%d, %v), want (1, nil)", n, err)
	}
	for user, want := range map[string]int64{"alice": 0, "carol": 70} {
		if got := db.UsedStep(user); got != want {
			t.Errorf("UsedStep(%s) an hour on: got %d, want %d", user, got, want)
		}
	}
}

func TestPruneStepsInBoundedTransactions(t *testing.T) {
	db := open(t, tempPath(t))
	const n = 2*store.MaxPrunedSteps + store.MaxPrunedSteps/2
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range n {
			if err := tx.UseStep("alice", int64(i+1), epoch); err != nil {
				return err
			}
		}
		return nil
	})
	for _, want := range []int{store.MaxPrunedSteps, store.MaxPrunedSteps, store.MaxPrunedSteps / 2, 0} {
		if got, err := db.PruneSteps(epoch.Add(time.Second)); err != nil || got != want {
			t.Fatalf("PruneSteps: got (%d, %v), want (%d, nil)", got, err, want)
		}
	}
}

func TestPruneWritesStepsIntoRecords(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		return errors.Join(
			tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}}),
			tx.PutUser(store.User{Name: "bob", TOTP: &store.TOTP{Sealed: []byte{2}, LastStep: 200}}),
			tx.PutUser(store.User{Name: "carol"}),
			tx.UseStep("alice", 99, epoch.Add(time.Minute)),
			tx.UseStep("alice", 100, epoch.Add(time.Minute)),
			tx.UseStep("bob", 150, epoch.Add(time.Minute)),
			tx.UseStep("carol", 70, epoch.Add(time.Minute)),
			tx.UseStep("dave", 80, epoch.Add(time.Minute)), // deleted since
		)
	})
	if n, err := db.PruneSteps(epoch.Add(time.Hour)); err != nil || n != 5 {
		t.Fatalf("Prune: got (%d, %v), want (5, nil)", n, err)
	}
	for name, want := range map[string]int64{"alice": 100, "bob": 200, "carol": -1} {
		mustView(t, db, func(tx *store.Tx) error {
			u, err := tx.User(name)
			if err != nil {
				return err
			}
			switch {
			case want < 0 && u.TOTP != nil:
				t.Errorf("%s: got TOTP %+v, want none", name, u.TOTP)
			case want >= 0 && (u.TOTP == nil || u.TOTP.LastStep != want):
				t.Errorf("%s: got TOTP %+v, want LastStep %d", name, u.TOTP, want)
			}
			return nil
		})
		if got := db.UsedStep(name); got != 0 {
			t.Errorf("UsedStep(%s) after pruning: got %d, want 0", name, got)
		}
	}
}

// TestPruneStepsPassesOverLiveEntries: entries whose time has not run
// out (a phone's clock ahead, a long window) do not stop pruning of the
// ones after them that have, up to a thousand of them passed over, which
// is more than one transaction removes.
func TestPruneStepsPassesOverLiveEntries(t *testing.T) {
	db := open(t, tempPath(t))
	live := 3 * store.MaxPrunedSteps
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range live {
			if err := tx.UseStep(fmt.Sprintf("ahead%d", i), 1000, epoch.Add(24*time.Hour)); err != nil {
				return err
			}
		}
		for i := range 50 {
			if err := tx.UseStep(fmt.Sprintf("done%d", i), 10, epoch); err != nil {
				return err
			}
		}
		return nil
	})
	if n, err := db.PruneSteps(epoch.Add(time.Minute)); err != nil || n != 50 {
		t.Fatalf("PruneSteps: got (%d, %v), want the 50 that ran out", n, err)
	}
	if got := db.UsedStep("ahead0"); got != 1000 {
		t.Errorf("UsedStep(ahead0): got %d, want 1000, still kept", got)
	}
}
