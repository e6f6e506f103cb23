package store

// These tests look at the log of used steps (steplog.go): which commits
// go to it, and what a store opened after a crash makes of it. A crash is
// the files copied while the store is open: what a kill -9 leaves (the
// page cache survives the process). What a crash of the machine leaves is
// in fence_test.go.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// useStep commits user's use of step as a TOTP answer does: CommitIf on
// the user as read, writing nothing else.
func useStep(t *testing.T, db *DB, user string, step int64) {
	t.Helper()
	r, err := db.ReadUser(user)
	if err != nil {
		t.Fatal(err)
	}
	err = db.CommitIf(r, func(tx *Tx) error { return tx.UseStep(user, step, time.Now().Add(time.Hour)) })
	if err != nil {
		t.Fatal(err)
	}
}

// openLogging opens a new store whose steps all go to the log: its high
// step is as high as any (fence.go), so that no step commits the file.
func openLogging(t *testing.T) *DB {
	t.Helper()
	db := openInternal(t, Options{})
	db.high = math.MaxInt64
	return db
}

// crashCopy copies the store's file and its log, as they are on disk now,
// to a new directory, and returns the copy's path.
func crashCopy(t *testing.T, db *DB) string {
	t.Helper()
	dir := t.TempDir()
	for _, from := range []string{db.path, stepLogPath(db.path)} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(from)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(db.path))
}

// stepsInFile returns the entries of the steps bucket, as user:step.
func stepsInFile(t *testing.T, db *DB) []string {
	t.Helper()
	var got []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSteps).ForEach(func(_, v []byte) error {
			user, step, _, _ := decodeStep(v)
			got = append(got, fmt.Sprintf("%s:%d", user, step))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func withUsers(t *testing.T, db *DB, names ...string) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for _, n := range names {
			if err := tx.PutUser(User{Name: n, TOTP: &TOTP{Sealed: []byte{1}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func wantSteps(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: steps in the file %v, want %v", what, got, want)
	}
}

// TestStepLogTakesAnswersAndSurvivesACrash: a TOTP answer's commit writes
// the log and not the file; a store opened from what a crash leaves has
// the step, in memory and in the file, and refuses it.
func TestStepLogTakesAnswersAndSurvivesACrash(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice", "bob")
	useStep(t, db, "alice", 100)
	useStep(t, db, "bob", 7)
	useStep(t, db, "alice", 101)
	wantSteps(t, "after three answers", stepsInFile(t, db))
	if db.steplog.off == 0 {
		t.Fatal("the answers wrote nothing in the log")
	}

	path := crashCopy(t, db)
	after, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	for user, want := range map[string]int64{"alice": 101, "bob": 7} {
		if got := after.UsedStep(user); got != want {
			t.Errorf("after the crash, %s's newest step: got %d, want %d", user, got, want)
		}
	}
	wantSteps(t, "after the crash", stepsInFile(t, after), "alice:100", "bob:7", "alice:101")
	r, err := after.ReadUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.User.TOTP.LastStep != 101 {
		t.Errorf("after the crash alice reads with LastStep %d, want 101: step 101 could be used again", r.User.TOTP.LastStep)
	}

	// A clean Close leaves the file whole on its own, and no log.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stepLogPath(db.path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log after Close: %v, want it removed", err)
	}
	b, err := bolt.Open(db.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n := 0
	b.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketSteps).Stats().KeyN; return nil })
	if n != 3 {
		t.Errorf("after Close the file holds %d steps, want 3", n)
	}
}

// TestStepLogGoesIntoTheNextCommit: a commit that writes the file anyway
// takes the steps logged before it, and starts a generation of the log,
// whose frames are the only ones a crash then leaves to apply: nothing
// is applied twice.
func TestStepLogGoesIntoTheNextCommit(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice", "carol", "bob")
	useStep(t, db, "alice", 100)
	useStep(t, db, "alice", 101)
	if err := db.Update(func(tx *Tx) error { return tx.PutMeta("x", []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "after a commit of the file", stepsInFile(t, db), "alice:100", "alice:101")
	if db.steplog.off != 0 || len(db.steplog.pending) != 0 {
		t.Errorf("after a commit of the file the log is at %d with %d pending, want 0, 0", db.steplog.off, len(db.steplog.pending))
	}
	// Overwrites the old first frame exactly (a name as long): the old
	// second frame follows it, whole, of the generation before.
	useStep(t, db, "carol", 7)

	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "after the crash", stepsInFile(t, after), "alice:100", "alice:101", "carol:7")

	// A write of the file that also uses a step commits both in the file.
	if err := db.Update(func(tx *Tx) error {
		return errors.Join(tx.PutMeta("x", []byte("z")), tx.UseStep("alice", 102, time.Now()))
	}); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "after a write with a step", stepsInFile(t, db), "alice:100", "alice:101", "carol:7", "alice:102")
	if db.steplog.off != 0 {
		t.Errorf("a write of the file left the log at %d", db.steplog.off)
	}
}

// TestStepLogTornTail: a frame cut short or changed by a crash during
// its write (never acknowledged) is where reading stops; the frames
// before it are applied and the store opens.
func TestStepLogTornTail(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice", "bob")
	useStep(t, db, "alice", 100)
	first := db.steplog.off
	useStep(t, db, "bob", 7)
	end := db.steplog.off
	for _, tear := range []struct {
		name string
		at   int64
	}{{"its last byte", end - 1}, {"its length", first}, {"its generation", first + 8}} {
		t.Run(tear.name, func(t *testing.T) {
			path := crashCopy(t, db)
			f, err := os.OpenFile(stepLogPath(path), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{0}
			f.ReadAt(b, tear.at)
			b[0] ^= 0x5a
			f.WriteAt(b, tear.at)
			f.Close()
			after, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("a torn last frame: %v", err)
			}
			defer after.Close()
			wantSteps(t, "after a torn last frame", stepsInFile(t, after), "alice:100")
			if got := after.UsedStep("bob"); got != 0 {
				t.Errorf("bob's step from the torn frame: got %d, want 0", got)
			}
		})
	}
}

// TestStepLogFull: once a frame does not fit, the answer commits the
// file, which takes what was logged: nothing is lost, and the log starts
// again.
func TestStepLogFull(t *testing.T) {
	defer func(n int64) { stepLogSize = n }(stepLogSize)
	stepLogSize = 200
	db := openLogging(t)
	withUsers(t, db, "alice")
	var want []string
	for step := int64(1); step <= 20; step++ {
		useStep(t, db, "alice", step)
		want = append(want, fmt.Sprintf("alice:%d", step))
	}
	if len(stepsInFile(t, db)) == 0 {
		t.Error("20 answers in a log of 200 bytes: none went to the file")
	}
	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "after the crash", stepsInFile(t, after), want...)
	if got := after.UsedStep("alice"); got != 20 {
		t.Errorf("alice's newest step after the crash: got %d, want 20", got)
	}
}

// TestStepLogFailsClosed: when the log cannot be written the answer's
// commit fails, and its step is not taken as used (nor accepted: the
// caller fails closed on the error).
func TestStepLogFailsClosed(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	db.steplog.f.Close() // every write fails from now on
	r, err := db.ReadUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	err = db.CommitIf(r, func(tx *Tx) error { return tx.UseStep("alice", 100, time.Now()) })
	if err == nil {
		t.Fatal("CommitIf with a log that cannot be written: no error")
	}
	if got := db.UsedStep("alice"); got != 0 {
		t.Errorf("a step whose write failed is known as used: %d", got)
	}
	db.steplog.f, err = os.OpenFile(stepLogPath(db.path), os.O_RDWR, 0) // for Close
	if err != nil {
		t.Fatal(err)
	}
}

// TestStepLogOfAnotherFile: a log left beside a store file that is new
// (the old one removed) is not applied to it.
func TestStepLogOfAnotherFile(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	useStep(t, db, "alice", 100)
	path := crashCopy(t, db)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	after, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "a new file", stepsInFile(t, after))
}

// TestBackupHoldsLoggedSteps: a backup taken while steps are only in the
// log holds them.
func TestBackupHoldsLoggedSteps(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	useStep(t, db, "alice", 100)
	path := filepath.Join(t.TempDir(), "backup.db")
	if _, err := db.Backup(path); err != nil {
		t.Fatal(err)
	}
	copy, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copy.Close()
	if got := copy.UsedStep("alice"); got != 100 {
		t.Errorf("alice's newest step in the backup: got %d, want 100", got)
	}
}

// TestUseStepInAViewFails: a step used in a read-only transaction is
// refused, as etcd refuses it, and as the file did when a step was put
// in the bucket at once: a caller told nil would take the step as
// recorded and accept its code, which nothing writes, again and again.
func TestUseStepInAViewFails(t *testing.T) {
	db := openInternal(t, Options{})
	withUsers(t, db, "alice")
	err := db.View(func(tx *Tx) error { return tx.UseStep("alice", 100, time.Now().Add(time.Hour)) })
	if err == nil {
		t.Error("UseStep in View: no error, and the step is recorded nowhere")
	}
	if got := db.UsedStep("alice"); got != 0 {
		t.Errorf("alice's newest step after a View: %d, want 0", got)
	}
}

// TestStepLogFoundWholeIsSyncedInItsDirectory: a log an Open made in
// full but died before syncing its directory (or whose sync failed) is
// found at its full size by the next Open, which writes acknowledged
// steps into it: its name must be made durable then, or a power cut
// loses the log, and with it what tells the next Open that the store
// was left open and must be fenced (fence.go).
func TestStepLogFoundWholeIsSyncedInItsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.db")
	// What the Open that died left: the log written in full, its
	// directory not synced.
	if err := os.WriteFile(stepLogPath(path), make([]byte, stepLogSize), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func(f func(string) error) { syncDir = f }(syncDir)
	var synced []string
	syncDir = func(p string) error {
		synced = append(synced, p)
		return nil
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(synced) == 0 {
		t.Errorf("Open wrote into a log whose directory entry was never synced")
	}
}
