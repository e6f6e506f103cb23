package store

// These tests look at the fence (fence.go): what a store opened after a
// crash of the machine, which may have lost the last frames of used
// steps, refuses. The machine's crash is the files copied while the store
// is open, with the log's frames left out (what the disk may hold when
// the page cache is gone), opened under another boot ID.

import (
	"os"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
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

// lastStep returns the newest step the guard refuses for user's TOTP, as
// an answer to a challenge reads it.
func lastStep(t *testing.T, db *DB, user string) int64 {
	t.Helper()
	r, err := db.ReadUser(user)
	if err != nil {
		t.Fatal(err)
	}
	return r.User.TOTP.LastStep
}

func TestCrashOfTheMachineFencesTheStepsOfThatMoment(t *testing.T) {
	onBoot(t, "boot-1")
	crash := time.Date(2026, 12, 2, 9, 0, 10, 0, time.UTC)
	now := crash
	clock := func() time.Time { return now }
	db := openInternal(t, Options{Now: clock})
	err := db.Update(func(tx *Tx) error {
		for _, u := range []User{
			{Name: "alice", TOTP: &TOTP{Sealed: []byte{1}}},
			{Name: "bob", TOTP: &TOTP{Sealed: []byte{1}, Drift: -2}}, // a phone a minute behind
		} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The codes accepted just before the crash: the latest steps their
	// phones could show (otp.Skew ahead of what they read).
	step := otp.Step(crash)
	useStep(t, db, "alice", step+otp.Skew)
	useStep(t, db, "bob", step-2+otp.Skew)

	path := crashCopy(t, db)
	loseFrames(t, path)
	onBoot(t, "boot-2")
	now = crash.Add(20 * time.Second) // the machine is back
	after, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if after.UsedStep("alice") != 0 {
		t.Fatalf("the test lost no frame: alice's step is still known (%d)", after.UsedStep("alice"))
	}
	fence := otp.Step(now)
	if after.Fence() != fence {
		t.Errorf("fence: got %d, want %d, the step Open ran in", after.Fence(), fence)
	}
	if got := lastStep(t, after, "alice"); got < step+otp.Skew {
		t.Errorf("alice reads with LastStep %d: the code of step %d, accepted before the crash, would be accepted again", got, step+otp.Skew)
	}
	if got, want := lastStep(t, after, "alice"), fence+otp.Skew; got != want {
		t.Errorf("alice's LastStep: got %d, want %d (the fence and a step ahead)", got, want)
	}
	if got, want := lastStep(t, after, "bob"), fence+otp.Skew+2; got != want {
		t.Errorf("bob's LastStep: got %d, want %d (the fence, a step and the two of his drift)", got, want)
	}
	// A code of a step after it is used as ever, and known afterwards.
	useStep(t, after, "alice", fence+otp.Skew+1)
	if got := lastStep(t, after, "alice"); got != fence+otp.Skew+1 {
		t.Errorf("alice's LastStep after the next code: got %d, want %d", got, fence+otp.Skew+1)
	}

	// The process crashes too while the fence stands, on the same boot:
	// the fence is kept, not raised again.
	now = now.Add(40 * time.Second)
	path = crashCopy(t, after)
	after.Close()
	again, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if again.Fence() != fence {
		t.Errorf("fence after a crash of the process: got %d, want %d", again.Fence(), fence)
	}
	if got := lastStep(t, again, "bob"); got != fence+otp.Skew+2 {
		t.Errorf("bob's LastStep after a crash of the process: got %d, want %d", got, fence+otp.Skew+2)
	}
	// Closed cleanly, then opened on another boot: nothing was lost, so
	// no fence is raised; the old one, long past, stays.
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	onBoot(t, "boot-3")
	now = now.Add(time.Hour)
	clean, err := Open(again.path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer clean.Close()
	if clean.Fence() != fence {
		t.Errorf("fence after a clean close and a reboot: got %d, want %d", clean.Fence(), fence)
	}
	if got := lastStep(t, clean, "alice"); got != fence+otp.Skew+1 {
		t.Errorf("alice's LastStep after a clean close: got %d, want %d, her own", got, fence+otp.Skew+1)
	}
}

func TestCrashOfTheProcessRaisesNoFence(t *testing.T) {
	onBoot(t, "boot-1")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice")
	useStep(t, db, "alice", otp.Step(time.Now()))
	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.Fence() != 0 {
		t.Errorf("fence after a crash of the process alone: %d, want none: the page cache kept the log", after.Fence())
	}
	if got, want := lastStep(t, after, "alice"), otp.Step(time.Now()); got < want {
		t.Errorf("alice's LastStep: got %d, want %d from the log", got, want)
	}
}

func TestFenceWhereTheBootCannotBeTold(t *testing.T) {
	onBoot(t, "")
	db := openInternal(t, Options{})
	withUsers(t, db, "alice")
	path := crashCopy(t, db)
	loseFrames(t, path)
	after, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.Fence() != otp.Step(time.Now()) && after.Fence() != otp.Step(time.Now())-1 {
		t.Errorf("fence with no boot ID: got %d, want the step of now (%d)", after.Fence(), otp.Step(time.Now()))
	}
}

func TestNewStoreRaisesNoFence(t *testing.T) {
	onBoot(t, "boot-1")
	db := openInternal(t, Options{})
	if db.Fence() != 0 {
		t.Errorf("a new store's fence: %d, want none", db.Fence())
	}
	// A log beside a file made anew (the file removed, the log left) is
	// not the file's own: no fence either.
	path := crashCopy(t, db)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	onBoot(t, "boot-2")
	again, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Fence() != 0 {
		t.Errorf("fence of a new file beside an old log: %d, want none", again.Fence())
	}
}
