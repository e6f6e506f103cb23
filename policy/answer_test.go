package policy_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func TestDecideTOTP(t *testing.T) {
	f := newFixture(t)
	res := f.decide(login("alice", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	if f.code() != "050471" {
		t.Fatalf("got code %s at the start time, want RFC 6238's 050471", f.code())
	}
	ok := f.decide(answer("alice", res.State, "050471", ipX))
	check(t, ok, want{policy.Accept, "totp_ok", "", "totp"})
	if ok.User != "alice" || ok.Tenant != "acme" {
		t.Errorf("got user %q tenant %q, want alice and acme", ok.User, ok.Tenant)
	}
	if n := f.countChallenges(); n != 0 {
		t.Errorf("got %d challenges left, want 0", n)
	}
	// The step used is in the store's list of steps; the record itself is
	// not rewritten for it.
	if got, want := f.db.UsedStep("alice"), start.Unix()/30; got != want {
		t.Errorf("got used step %d, want %d", got, want)
	}
	var u store.User
	f.db.View(func(tx *store.Tx) error { u, _ = tx.User("alice"); return nil })
	if u.TOTP == nil || u.TOTP.LastStep != 0 {
		t.Errorf("got TOTP %+v, want the record as enrolled (LastStep 0)", u.TOTP)
	}
}

func TestDecideTOTPReplay(t *testing.T) {
	f := newFixture(t)
	first := f.decide(login("alice", ipX))
	code := f.code()
	check(t, f.decide(answer("alice", first.State, code, ipX)), want{policy.Accept, "totp_ok", "", "totp"})

	// Same code on a new challenge, from a new place so that no reconnect helps.
	second := f.decide(login("alice", ipY))
	check(t, second, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	replay := f.decide(answer("alice", second.State, code, ipY))
	check(t, replay, want{policy.Challenge, "totp_replay", "Wrong code, 2 tries left", "totp"})

	// An older step's code is no better.
	older := f.decide(answer("alice", replay.State, f.codeAt(f.now.Add(-30*time.Second)), ipY))
	check(t, older, want{policy.Challenge, "totp_replay", "Wrong code, 1 try left", "totp"})

	// The next step's code works once it comes.
	f.advance(30 * time.Second)
	check(t, f.decide(answer("alice", older.State, f.code(), ipY)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestDecideTOTPReplayPerUser(t *testing.T) {
	// A step used by one user does not block another with the same secret.
	f := newFixture(t)
	a := f.decide(login("alice", ipX))
	g := f.decide(login("grace", ipX))
	check(t, f.decide(answer("alice", a.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	check(t, f.decide(answer("grace", g.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestDecideWrongCode(t *testing.T) {
	f := newFixture(t)
	s1 := f.decide(login("alice", ipX)).State
	wrong := f.wrongCode()

	r2 := f.decide(answer("alice", s1, wrong, ipX))
	check(t, r2, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
	if r2.State == s1 {
		t.Fatalf("got the same State after a wrong code, want a new one")
	}
	// The old State is spent, even with the right code.
	check(t, f.decide(answer("alice", s1, f.code(), ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})

	r3 := f.decide(answer("alice", r2.State, wrong, ipX))
	check(t, r3, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"})
	if r3.State == r2.State || r3.State == s1 {
		t.Fatalf("got a State used before, want a new one")
	}
	ch, err := f.challenge(r3.State)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Attempts != 2 || !ch.Expires.Equal(start.Add(3*time.Minute)) {
		t.Errorf("got %d attempts expiring %v, want 2 and the first expiry %v", ch.Attempts, ch.Expires, start.Add(3*time.Minute))
	}

	r4 := f.decide(answer("alice", r3.State, wrong, ipX))
	check(t, r4, want{policy.Reject, "wrong_code_final", msgs.TooManyWrong, "totp"})
	// Nothing is left to answer, not even with the right code.
	check(t, f.decide(answer("alice", r3.State, f.code(), ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	if n := f.countChallenges(); n != 0 {
		t.Errorf("got %d challenges left, want 0", n)
	}
}

func TestDecideWrongThenRightCode(t *testing.T) {
	f := newFixture(t)
	s1 := f.decide(login("alice", ipX)).State
	r2 := f.decide(answer("alice", s1, f.wrongCode(), ipX))
	check(t, r2, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
	check(t, f.decide(answer("alice", r2.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestDecideWrongCodeTenantText(t *testing.T) {
	f := newFixture(t)
	s1 := f.decide(withTenant(login("ivan", ipX), "nl")).State
	check(t, f.decide(withTenant(answer("ivan", s1, f.wrongCode(), ipX), "nl")),
		want{policy.Challenge, "wrong_code", "Verkeerde code, nog 2 pogingen", "totp"})
}

func TestDecideStateSingleUse(t *testing.T) {
	f := newFixture(t)
	s := f.decide(login("alice", ipX)).State
	check(t, f.decide(answer("alice", s, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	f.advance(30 * time.Second)
	check(t, f.decide(answer("alice", s, f.code(), ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
}

func TestDecideExpired(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  want
	}{
		{"just before expiry", 3*time.Minute - time.Second, want{policy.Accept, "totp_ok", "", "totp"}},
		{"after expiry", 3*time.Minute + time.Second, want{policy.Reject, "code_expired", msgs.CodeExpired, "totp"}},
		{"long after", time.Hour, want{policy.Reject, "code_expired", msgs.CodeExpired, "totp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.decide(login("alice", ipX)).State
			f.advance(tt.after)
			check(t, f.decide(answer("alice", s, f.code(), ipX)), tt.want)
			// Whatever the outcome, the State is spent.
			check(t, f.decide(answer("alice", s, f.code(), ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
		})
	}
}

func TestDecideExpiredSMS(t *testing.T) {
	f := newFixture(t)
	s := f.decide(login("bob", ipX)).State
	code := f.sender.messages()[0].Code
	f.advance(3*time.Minute + time.Second)
	check(t, f.decide(answer("bob", s, code, ipX)), want{policy.Reject, "code_expired", msgs.CodeExpired, "sms"})
}

func TestDecideStateBinding(t *testing.T) {
	f := newFixture(t)
	s := f.decide(login("alice", ipX)).State
	code := f.code()

	otherUser := f.decide(answer("grace", s, code, ipX))
	check(t, otherUser, want{policy.Reject, "state_mismatch", msgs.CodeExpired, ""})
	if otherUser.User != "grace" {
		t.Errorf("got user %q, want grace", otherUser.User)
	}
	otherClient := answer("alice", s, code, ipX)
	otherClient.Client = "vpn"
	check(t, f.decide(otherClient), want{policy.Reject, "state_mismatch", msgs.CodeExpired, ""})

	// The owner can still answer, in any spelling of the name.
	check(t, f.decide(answer("Alice", s, code, ipX)), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestDecideUnknownState(t *testing.T) {
	f := newFixture(t)
	check(t, f.decide(answer("alice", "00112233445566778899aabbccddeeff", f.code(), ipX)),
		want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	// The gateway tenant's text is used.
	check(t, f.decide(withTenant(answer("ivan", "00112233445566778899aabbccddeeff", f.code(), ipX), "nl")),
		want{policy.Reject, "unknown_state", "Uw code is verlopen.", ""})
}

func TestDecideUserDeletedDuringChallenge(t *testing.T) {
	f := newFixture(t)
	s := f.decide(login("alice", ipX)).State
	if err := f.db.Update(func(tx *store.Tx) error { return tx.DeleteUser("alice") }); err != nil {
		t.Fatal(err)
	}
	check(t, f.decide(answer("alice", s, f.code(), ipX)), want{policy.Reject, "unknown_user", msgs.BadPassword, ""})
	if n := f.countChallenges(); n != 0 {
		t.Errorf("got %d challenges left, want 0", n)
	}
}

func TestDecideDamagedSecretFailsClosed(t *testing.T) {
	// A secret sealed for another user cannot be opened: the answer is an
	// error, and the challenge is left as it was.
	f := newFixture(t)
	sealed, err := f.key.Seal([]byte(totpSecret), "totp:someone-else")
	if err != nil {
		t.Fatal(err)
	}
	f.addUsers(store.User{Name: "sam", Tenant: "acme", Method: policy.MethodTOTP, TOTP: &store.TOTP{Sealed: sealed}})
	s := f.decide(login("sam", ipX)).State
	check(t, f.decide(answer("sam", s, f.code(), ipX)), want{policy.Reject, "error", msgs.Unavailable, ""})
	ch, err := f.challenge(s)
	if err != nil {
		t.Fatalf("challenge after a failed answer: got %v, want it kept", err)
	}
	if ch.Attempts != 0 {
		t.Errorf("got %d attempts, want 0", ch.Attempts)
	}
}

func TestDecideTOTPReplayAfterPruneAndClockSetBack(t *testing.T) {
	// A code used once stays used when the server's clock is set back (an
	// NTP step, a virtual machine resumed) after the list of used steps was
	// pruned: pruning writes the step into the user's record.
	f := newFixture(t)
	first := f.decide(login("alice", ipX))
	code := f.code()
	check(t, f.decide(answer("alice", first.State, code, ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	used := f.now
	f.advance(5 * time.Minute)
	if _, err := f.db.PruneSteps(f.now); err != nil {
		t.Fatal(err)
	}
	if got := f.db.UsedStep("alice"); got != 0 {
		t.Fatalf("used step after pruning: got %d, want it gone from the list", got)
	}
	f.now = used.Add(time.Second)
	second := f.decide(login("alice", ipY))
	check(t, f.decide(answer("alice", second.State, code, ipY)), want{policy.Challenge, "totp_replay", "Wrong code, 2 tries left", "totp"})
}

func TestDecideTOTPAcceptedWhenItsBatchRunsAgain(t *testing.T) {
	// The store commits the writes of many requests together; when one of
	// them fails, every function runs again in a transaction of its own.
	// An answer whose step its first run had used must still be accepted,
	// not refused as a replay of itself, also when another function has
	// changed the user's record meanwhile so that it is judged again.
	f := newFixture(t)
	first := f.decide(login("alice", ipY))
	code := f.code()

	running, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		f.db.Update(func(*store.Tx) error { close(running); <-release; return nil })
	})
	<-running // the commit loop is busy: what follows is queued together
	runs := 0
	wg.Go(func() {
		f.db.Update(func(tx *store.Tx) error {
			runs++
			u, err := tx.User("alice")
			if err != nil {
				return err
			}
			u.Updated = time.Unix(int64(runs), 0) // different in each run, as an admin's clock is
			return tx.PutUser(u)
		})
	})
	waitQueued(t, f.db, 1)
	var res policy.Result
	wg.Go(func() { res = f.engine.Decide(context.Background(), answer("alice", first.State, code, ipY)) })
	waitQueued(t, f.db, 2)
	wg.Go(func() {
		f.db.Update(func(*store.Tx) error { return errors.New("a write that fails") })
	})
	waitQueued(t, f.db, 3)
	close(release)
	wg.Wait()
	if runs != 2 {
		t.Fatalf("the record-changing function ran %d times, want 2 (the batch ran again)", runs)
	}
	check(t, res, want{policy.Accept, "totp_ok", "", "totp"})
	if got, want := f.db.UsedStep("alice"), start.Unix()/30; got != want {
		t.Errorf("used step: got %d, want %d", got, want)
	}
}

// waitQueued waits until n writes wait for the store's commit loop. It
// waits for a condition, not for time to pass.
func waitQueued(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for db.Queued() < n {
		runtime.Gosched()
	}
	if got := db.Queued(); got != n {
		t.Fatalf("got %d queued writes, want %d", got, n)
	}
}

func TestDecideAnswerSeesALockoutThatCameMeanwhile(t *testing.T) {
	// A wrong code in a tenant without a lockout of its own writes nothing;
	// it is still judged against the record as it is when the decision is
	// made, so a lockout set since the record was read (by an admin, or by
	// another answer) wins over another try.
	f := newFixture(t)
	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", "sms"})
	wrong := "000000"
	if f.sender.messages()[0].Code == wrong {
		wrong = "111111"
	}
	got, err := f.engine.AnswerAfter(answer("bob", res.State, wrong, ipX), func() {
		err := f.db.Update(func(tx *store.Tx) error {
			u, err := tx.User("bob")
			if err != nil {
				return err
			}
			u.LockedUntil = f.now.Add(time.Hour)
			return tx.PutUser(u)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Decision != policy.Reject || got.Reason != "locked" {
		t.Errorf("got %s (%s), want a reject for the lockout", got.Decision, got.Reason)
	}
}
