package store

// These tests look at the fence (fence.go): what a store opened after a
// crash of the machine, which may have lost the last frames of used
// steps, refuses. The machine's crash is the files copied while the store
// is open, with the log's frames left out (what the disk may hold when
// the page cache is gone), opened under another boot ID.

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// onBoot makes the store see boot as the kernel's boot ID until the test
// ends.
func onBoot(t *testing.T, boot string) {
	t.Helper()
	old := currentBoot
	currentBoot = func() string { return boot }
	t.Cleanup(func() { currentBoot = old })
}

// loseFrames overwrites the log of the store at path with zeros: none of
// its frames reached the disk.
func loseFrames(t *testing.T, path string) {
	t.Helper()
	p := stepLogPath(path)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, st.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reopen opens the store at path, as left by a crash, until the test ends.
func reopen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// lastSteps returns the newest step the guard refuses for user's TOTP
// and pending TOTP, as an answer to a challenge reads them.
func lastSteps(t *testing.T, db *DB, user string) (totp, pending int64) {
	t.Helper()
	r, err := db.ReadUser(user)
	if err != nil {
		t.Fatal(err)
	}
	if r.User.PendingTOTP != nil {
		pending = r.User.PendingTOTP.LastStep
	}
	return r.User.TOTP.LastStep, pending
}

// fileCommits returns how many times the store's file has been committed.
func fileCommits(db *DB) uint64 { return db.syncs.file.histogram().Count }

func TestCrashOfTheMachineFencesEveryStepUsedBeforeIt(t *testing.T) {
	onBoot(t, "boot-1")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice", "bob")
	err := db.Update(func(tx *Tx) error {
		return tx.PutUser(User{Name: "carol", TOTP: &TOTP{Sealed: []byte{1}}, PendingTOTP: &TOTP{Sealed: []byte{2}}})
	})
	if err != nil {
		t.Fatal(err)
	}

	// The first step above the high step commits the file, which raises
	// it; the steps at or below it go to the log alone.
	before := fileCommits(db)
	useStep(t, db, "alice", 1000)
	if got := fileCommits(db) - before; got != 1 {
		t.Errorf("a step above the high step: %d commits of the file, want 1", got)
	}
	if db.high != 1000 {
		t.Errorf("high step: got %d, want 1000", db.high)
	}
	before = fileCommits(db)
	useStep(t, db, "bob", 999)
	useStep(t, db, "carol", 1000)
	if got := fileCommits(db) - before; got != 0 {
		t.Errorf("steps at or below the high step: %d commits of the file, want none (the log)", got)
	}
	useStep(t, db, "bob", 1001) // a phone ahead: the file again
	if got := fileCommits(db) - before; got != 1 || db.high != 1001 {
		t.Errorf("a step above the high step: %d commits of the file and high step %d, want 1 and 1001", got, db.high)
	}
	useStep(t, db, "alice", 1001) // in the log alone: lost below
	if got := fileCommits(db) - before; got != 1 {
		t.Errorf("a step at the high step: %d commits of the file, want none more", got-1)
	}

	path := crashCopy(t, db)
	loseFrames(t, path)
	onBoot(t, "boot-2")
	after, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := after.UsedStep("alice"); got != 1000 {
		t.Fatalf("the test lost the wrong frames: alice's newest step known is %d, want 1000 (1001 lost)", got)
	}
	if after.fence != 1001 {
		t.Errorf("fence: got %d, want 1001, the newest step used before the crash", after.fence)
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		if got, _ := lastSteps(t, after, user); got != 1001 {
			t.Errorf("%s reads with LastStep %d, want 1001: alice's code of step 1001, accepted before the crash, would be accepted again", user, got)
		}
	}
	if _, pending := lastSteps(t, after, "carol"); pending != 1001 {
		t.Errorf("carol's pending TOTP reads with LastStep %d, want 1001", pending)
	}
	// The next step is used as ever, and known afterwards.
	useStep(t, after, "alice", 1002)
	if got, _ := lastSteps(t, after, "alice"); got != 1002 {
		t.Errorf("alice's LastStep after the next code: got %d, want 1002", got)
	}

	// The process crashes while the fence stands, on the same boot: the
	// fence is kept, not raised to the high step of now.
	path = crashCopy(t, after)
	after.Close()
	again, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.fence != 1001 {
		t.Errorf("fence after a crash of the process: got %d, want 1001", again.fence)
	}
	if got, _ := lastSteps(t, again, "bob"); got != 1001 {
		t.Errorf("bob's LastStep after a crash of the process: got %d, want 1001", got)
	}
	if got, _ := lastSteps(t, again, "alice"); got != 1002 {
		t.Errorf("alice's LastStep after a crash of the process: got %d, want 1002, from the file", got)
	}

	// And the machine crashes again, losing carol's step, which went to
	// the log alone: the fence rises to the new high step, and her code
	// is refused.
	useStep(t, again, "bob", 1003)
	useStep(t, again, "carol", 1003)
	path = crashCopy(t, again)
	again.Close()
	loseFrames(t, path)
	onBoot(t, "boot-3")
	var logged bytes.Buffer
	third, err := Open(path, Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := third.UsedStep("carol"); got == 1003 {
		t.Fatal("the test lost no frame: carol's step 1003 is still known")
	}
	if third.fence != 1003 {
		t.Errorf("fence after the second crash of the machine: got %d, want 1003", third.fence)
	}
	if got, _ := lastSteps(t, third, "carol"); got != 1003 {
		t.Errorf("carol reads with LastStep %d after the second crash, want 1003: her code of step 1003 would be accepted again", got)
	}
	if !strings.Contains(logged.String(), "fence_step=1003") {
		t.Errorf("a fence raised is not reported in the log: %q", logged.String())
	}

	// Closed cleanly, then opened on another boot: nothing was lost, so
	// the fence is not raised.
	useStep(t, third, "carol", 1004)
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
	onBoot(t, "boot-4")
	clean := reopen(t, third.path)
	if clean.fence != 1003 {
		t.Errorf("fence after a clean close and a reboot: got %d, want 1003, the last one", clean.fence)
	}
	if got, _ := lastSteps(t, clean, "alice"); got != 1003 {
		t.Errorf("alice's LastStep after a clean close: got %d, want 1003", got)
	}
}

func TestCrashOfTheProcessRaisesNoFence(t *testing.T) {
	onBoot(t, "boot-1")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice", "bob")
	useStep(t, db, "alice", 1000)
	useStep(t, db, "bob", 999) // in the log alone
	after := reopen(t, crashCopy(t, db))
	if after.fence != 0 {
		t.Errorf("fence after a crash of the process alone: %d, want none: the page cache kept the log", after.fence)
	}
	if got, _ := lastSteps(t, after, "bob"); got != 999 {
		t.Errorf("bob's LastStep: got %d, want 999 from the log", got)
	}
}

func TestFenceWhereTheBootCannotBeTold(t *testing.T) {
	onBoot(t, "")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice")
	useStep(t, db, "alice", 1000)
	path := crashCopy(t, db)
	loseFrames(t, path)
	after := reopen(t, path)
	if after.fence != 1000 {
		t.Errorf("fence with no boot ID: got %d, want the high step, 1000", after.fence)
	}
}

func TestNewStoreRaisesNoFence(t *testing.T) {
	onBoot(t, "boot-1")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice", "bob")
	useStep(t, db, "alice", 1000)
	useStep(t, db, "bob", 999) // in the log alone
	// A log beside a file made anew (the file removed, the log left) is
	// not the file's own.
	path := crashCopy(t, db)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	onBoot(t, "boot-2")
	again := reopen(t, path)
	if again.fence != 0 || again.high != 0 {
		t.Errorf("fence and high step of a new file beside an old log: %d and %d, want none", again.fence, again.high)
	}
	if got := again.UsedStep("bob"); got != 0 {
		t.Errorf("a new file took the old log's steps: bob's step %d, want none", got)
	}
}
