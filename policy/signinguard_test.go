package policy

import (
	"fmt"
	"testing"
	"time"
)

// TestSignInGuardFlood floods the sign-in page's lockout table with wrong
// answers for made-up names, as a stranger without a password can, and
// checks that the page stays open to names with no failures, that a
// locked name stays locked, and that records go when their window ends.
func TestSignInGuardFlood(t *testing.T) {
	lock := Lockout{Failures: 5, Window: 15 * time.Minute, Duration: 15 * time.Minute}
	now := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	var g signInFailures
	for range lock.Failures {
		g.try("victim", now, lock)
	}
	if !g.locked("victim", now) {
		t.Fatal("victim: not locked after 5 wrong answers")
	}
	// One wrong answer for each of twice the table's size of names, spread
	// over the victim's lock: 200,000 posts.
	for i := range 2 * maxSignInNames {
		at := now.Add(time.Duration(i) * lock.Duration / (2 * maxSignInNames) / 2)
		if !g.try(fmt.Sprintf("flood%06d", i), at, lock) {
			t.Fatalf("flood name %d at %v: refused; a flood of names must not shut the page", i, at.Sub(now))
		}
	}
	at := now.Add(lock.Duration / 2)
	if !g.locked("victim", at) {
		t.Error("victim: the flood unlocked it")
	}
	if g.try("victim", at, lock) {
		t.Error("victim: a try was judged during the lock")
	}
	if g.locked("alice", at) || !g.try("alice", at, lock) {
		t.Error("alice, no failures: locked out of the page after the flood")
	}
	// The lock ends after its duration, and the window is 15 minutes, not
	// a day: then every record of the flood is spent, and the next name
	// sweeps them all out rather than the oldest tenth.
	later := now.Add(lock.Duration + lock.Window + time.Minute)
	if g.locked("victim", later) {
		t.Error("victim: still locked after the lock's duration")
	}
	for i := 0; len(g.names) < maxSignInNames; i++ {
		g.try(fmt.Sprintf("more%06d", i), now.Add(lock.Duration), lock)
	}
	if !g.try("bob", later, lock) {
		t.Fatal("bob: refused")
	}
	if n := len(g.names); n != 1 {
		t.Errorf("after the window: %d names tracked, want 1 (bob)", n)
	}
}

// TestSignInGuardFullOfLocks: when every record is a running lock, a new
// name is refused (fail closed: its tries could not be counted) until the
// first lock ends; no lock is dropped to make room.
func TestSignInGuardFullOfLocks(t *testing.T) {
	lock := Lockout{Failures: 1, Window: 15 * time.Minute, Duration: 15 * time.Minute}
	now := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	var g signInFailures
	for i := range maxSignInNames {
		g.try(fmt.Sprintf("lock%06d", i), now.Add(time.Duration(i)*time.Millisecond), lock)
	}
	at := now.Add(time.Minute)
	if g.try("alice", at, lock) || !g.locked("alice", at) {
		t.Error("alice: judged while every record is a running lock")
	}
	if !g.locked("lock000000", at) {
		t.Error("lock000000: its lock was dropped to make room")
	}
	at = now.Add(lock.Duration + time.Second)
	if !g.try("alice", at, lock) {
		t.Error("alice: refused after the first locks ended")
	}
}
