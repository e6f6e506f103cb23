package store

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// auditNow queues an audit entry and commits it as the timer would, on
// its own, beside the queue's leader (leadAudits), and returns once it is
// in the file.
func auditNow(t *testing.T, db *DB, user string) {
	t.Helper()
	before := db.SyncTimes()[SyncFile].Count
	if err := db.Audit(Entry{User: user}); err != nil {
		t.Fatal(err)
	}
	db.commitAudit()
	if got := db.SyncTimes()[SyncFile].Count; got != before+1 {
		t.Fatalf("%d commits of the file for an audit entry, want 1", got-before)
	}
}

// TestStepLogSurvivesAuditCommits: commits of audit entries on their own
// come between a step's frame and the next commit that takes the log's
// steps; a crash then leaves a log whose generation is not the file's
// last commit's ID, and its steps are still applied, and refused.
func TestStepLogSurvivesAuditCommits(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice", "bob")
	useStep(t, db, "alice", 100)
	auditNow(t, db, "a1")
	useStep(t, db, "bob", 7)
	auditNow(t, db, "a2")
	wantSteps(t, "before the crash", stepsInFile(t, db)) // all in the log

	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "after the crash", stepsInFile(t, after), "alice:100", "bob:7")
	if got := after.UsedStep("alice"); got != 100 {
		t.Errorf("alice's used step after the crash: %d, want 100", got)
	}
	if got := fmt.Sprint(auditUsers(t, after)); got != "[a1 a2]" {
		t.Errorf("the audit log after the crash: %s, want [a1 a2]", got)
	}
	// And once more from there: the generation Open wrote holds for the
	// frames written after it.
	useStep(t, after, "bob", 8)
	auditNow(t, after, "a3")
	again, err := Open(crashCopy(t, after), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	wantSteps(t, "after a second crash", stepsInFile(t, again), "alice:100", "bob:7", "bob:8")
}

// TestUsedStepDoesNotWaitForAuditCommit: a TOTP answer's step goes to
// the log while a commit of audit entries holds the file; the steps it
// logged are taken by the next commit that takes the log's steps, not by
// the audit commit.
func TestUsedStepDoesNotWaitForAuditCommit(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	inside, release := make(chan struct{}), make(chan struct{})
	if err := db.enqueue(op{fn: func(tx *Tx) error {
		close(inside)
		<-release
		return tx.AppendAudit(Entry{User: "held"})
	}}); err != nil {
		t.Fatal(err)
	}
	audited := make(chan struct{})
	go func() { db.commitAudit(); close(audited) }()
	<-inside // the audit commit holds bbolt's writer

	used := make(chan struct{})
	go func() { useStep(t, db, "alice", 100); close(used) }()
	select {
	case <-used:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a used step waited for the commit of audit entries")
	}
	if got := db.UsedStep("alice"); got != 100 {
		t.Errorf("alice's used step: %d, want 100", got)
	}
	close(release)
	<-audited
	wantSteps(t, "after the audit commit", stepsInFile(t, db)) // still the log's
	if len(db.steplog.pending) != 1 {
		t.Errorf("%d steps pending in the log after the audit commit, want 1", len(db.steplog.pending))
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutMeta("x", []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "after a commit of the file", stepsInFile(t, db), "alice:100")
}

// TestStepLogOfAGenerationTheFileNoLongerKeeps: when the file names
// another generation than the log's (a commit that failed after bbolt
// wrote its meta page is read back as made), no frame is written that
// Open would skip: the step commits the file, which starts a generation
// of its own, and a crash then loses nothing.
func TestStepLogOfAGenerationTheFileNoLongerKeeps(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return putStep(tx.Bucket(bucketBoot), keyGeneration, int64(db.steplog.gen)+5)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := db.SyncTimes()[SyncFile].Count
	useStep(t, db, "alice", 100)
	if got := db.SyncTimes()[SyncFile].Count - before; got != 1 {
		t.Errorf("%d commits of the file for a step while the generations differ, want 1", got)
	}
	wantSteps(t, "after the step", stepsInFile(t, db), "alice:100")
	useStep(t, db, "alice", 101) // the log's again, of the new generation
	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "after the crash", stepsInFile(t, after), "alice:100", "alice:101")
}

// TestStepLogOfAnOlderBuildIsApplied: frames an older build wrote, of
// its last commit's ID, after a generation this build kept, are applied.
func TestStepLogOfAnOlderBuildIsApplied(t *testing.T) {
	db := openLogging(t)
	withUsers(t, db, "alice")
	auditNow(t, db, "a1") // the file's last commit is now past the kept generation
	var last uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error { last = uint64(tx.ID()); return nil }); err != nil {
		t.Fatal(err)
	}
	db.steplog.gen = last // a frame as an older build would write it
	if err := db.steplog.append([][]byte{encodeStep("alice", 100, time.Now().Add(time.Hour).UnixNano())}); err != nil {
		t.Fatal(err)
	}
	after, err := Open(crashCopy(t, db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	wantSteps(t, "after the crash", stepsInFile(t, after), "alice:100")
}
