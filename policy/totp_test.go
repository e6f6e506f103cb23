package policy_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// steps is n TOTP steps of time.
func steps(n int) time.Duration { return time.Duration(n) * otp.Period }

// place is a fresh end-user IP for the i-th login of a test, so that no
// reconnect window lets a login through without a code.
func place(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}) }

func TestDecideTOTPWindow(t *testing.T) {
	// An answer is tried against three steps, not nine: a code one step
	// either way of the phone's learned drift (none yet) is accepted; one
	// further out, up to otp.MaxDrift, only asks for the next code; past
	// that it is wrong.
	for offset := -otp.MaxDrift - 1; offset <= otp.MaxDrift+1; offset++ {
		t.Run(fmt.Sprintf("%+d steps", offset), func(t *testing.T) {
			f := newFixture(t)
			res := f.decide(login("alice", ipX))
			got := f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(offset))), ipX))
			used := f.db.UsedStep("alice")
			switch {
			case offset >= -otp.Skew && offset <= otp.Skew:
				check(t, got, want{policy.Accept, "totp_ok", "", "totp"})
				if want := otp.Step(f.now) + int64(offset); used != want {
					t.Errorf("got used step %d, want %d", used, want)
				}
			case offset >= -otp.MaxDrift && offset <= otp.MaxDrift:
				check(t, got, want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
				if used != 0 {
					t.Errorf("a code too far out to be accepted alone used step %d", used)
				}
			default:
				check(t, got, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "totp"})
			}
			if d := f.user("alice").TOTP.Drift; d != 0 {
				t.Errorf("got drift %d after one code, want 0", d)
			}
		})
	}
}

func TestDecideTOTPResync(t *testing.T) {
	// A phone three steps ahead: its code asks for the next one, and the
	// two in a row learn the drift; from then on its codes are accepted
	// step after step, with no "replay" in between.
	f := newFixture(t)
	phone := func() string { return f.codeAt(f.now.Add(steps(3))) }
	res := f.decide(login("alice", ipX))
	far := f.decide(answer("alice", res.State, phone(), ipX))
	check(t, far, want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
	f.advance(otp.Period) // the phone shows its next code
	check(t, f.decide(answer("alice", far.State, phone(), ipX)), want{policy.Accept, "totp_resync", "", "totp"})
	u := f.user("alice")
	if u.TOTP.Drift != 3 || u.TOTP.LastStep != otp.Step(f.now)+3 {
		t.Fatalf("got drift %d, last step %d, want 3 and %d", u.TOTP.Drift, u.TOTP.LastStep, otp.Step(f.now)+3)
	}
	// The same code once more is a replay.
	res = f.decide(login("alice", place(0)))
	check(t, f.decide(answer("alice", res.State, phone(), place(0))), want{policy.Challenge, "totp_replay", "Wrong code, 2 tries left", "totp"})
	for i := 1; i <= 6; i++ {
		f.advance(otp.Period)
		res := f.decide(login("alice", place(i)))
		check(t, f.decide(answer("alice", res.State, phone(), place(i))), want{policy.Accept, "totp_ok", "", "totp"})
	}
}

func TestDecideTOTPFarCodeAloneChangesNothing(t *testing.T) {
	// A code three steps ahead that is not followed by the next one (a
	// guess that hit, a code typed from another device) is not accepted,
	// so it does not turn the user's current codes into replays: they
	// work in each of the following steps, but for that code itself when
	// its step comes: the answer told it was a code.
	f := newFixture(t)
	res := f.decide(login("alice", ipX))
	check(t, f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(3))), ipX)), want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
	for i := range 5 {
		res := f.decide(login("alice", place(i)))
		if i == 3 {
			check(t, f.decide(answer("alice", res.State, f.code(), place(i))), want{policy.Challenge, "totp_replay", "Wrong code, 2 tries left", "totp"})
		} else {
			check(t, f.decide(answer("alice", res.State, f.code(), place(i))), want{policy.Accept, "totp_ok", "", "totp"})
		}
		f.advance(otp.Period)
	}
	if d := f.user("alice").TOTP.Drift; d != 0 {
		t.Errorf("got drift %d, want 0", d)
	}
}

func TestDecideTOTPResyncNeedsTheNextCode(t *testing.T) {
	// After a code three steps ahead, found at step S at time T, only the
	// code of S+1 at about the same offset will do; anything else is a
	// wrong code, and the try after it is judged as any other.
	tests := []struct {
		name  string
		after time.Duration // from T to the second answer
		code  int           // the second answer's step, from S
		want  want
	}{
		{"the next code", 0, 1, want{policy.Accept, "totp_resync", "", "totp"}},
		{"the next code a step later", steps(1), 1, want{policy.Accept, "totp_resync", "", "totp"}},
		{"the next code two steps later", steps(2), 1, want{policy.Accept, "totp_resync", "", "totp"}},
		{"the next code three steps later", steps(3), 1, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"}},
		{"the same code", 0, 0, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"}},
		{"the code after the next", steps(1), 2, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"}},
		{"the code before", 0, -1, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"}},
		{"the server's current code", 0, -3, want{policy.Challenge, "wrong_code", "Wrong code, 1 try left", "totp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := otp.Step(f.now) + 3
			res := f.decide(login("alice", ipX))
			far := f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(3))), ipX))
			check(t, far, want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
			f.advance(tt.after)
			code := f.codeAt(time.Unix((s+int64(tt.code))*30, 0))
			got := f.decide(answer("alice", far.State, code, ipX))
			check(t, got, tt.want)
			u := f.user("alice")
			if got.Decision == policy.Accept {
				if u.TOTP.Drift != 3 || u.TOTP.LastStep != s+1 {
					t.Errorf("got drift %d, last step %d, want 3 and %d", u.TOTP.Drift, u.TOTP.LastStep, s+1)
				}
				return
			}
			if u.TOTP.Drift != 0 {
				t.Errorf("got drift %d, want 0", u.TOTP.Drift)
			}
			// The last try is an ordinary one: the current code is
			// accepted, unless it is the far code itself, never accepted
			// once it was told to be one.
			if otp.Step(f.now) == s {
				f.advance(otp.Period)
			}
			check(t, f.decide(answer("alice", got.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
		})
	}
}

func TestDecideTOTPResyncCountsAttempts(t *testing.T) {
	// Both codes of a resynchronisation are attempts like any wrong code:
	// it is no way to more guesses.
	t.Run("lockout", func(t *testing.T) {
		f := newFixture(t, withLockout(2, 15*time.Minute, time.Hour))
		res := f.decide(login("alice", ipX))
		far := f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(-2))), ipX))
		check(t, far, want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
		check(t, f.decide(answer("alice", far.State, f.wrongCode(), ipX)), want{policy.Reject, "locked", msgs.Locked, "totp"})
	})
	t.Run("attempts", func(t *testing.T) {
		f := newFixture(t)
		res := f.decide(login("alice", ipX))
		res = f.decide(answer("alice", res.State, f.wrongCode(), ipX))
		res = f.decide(answer("alice", res.State, f.wrongCode(), ipX))
		check(t, f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(2))), ipX)), want{policy.Reject, "totp_far_final", msgs.TooManyWrong, "totp"})
	})
	t.Run("cleared by the next code", func(t *testing.T) {
		f := newFixture(t, withLockout(3, 15*time.Minute, time.Hour))
		res := f.decide(login("alice", ipX))
		far := f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(2))), ipX))
		if n := len(f.user("alice").Failures); n != 1 {
			t.Fatalf("got %d failures after a code too far out, want 1", n)
		}
		check(t, f.decide(answer("alice", far.State, f.codeAt(f.now.Add(steps(3))), ipX)), want{policy.Accept, "totp_resync", "", "totp"})
		if n := len(f.user("alice").Failures); n != 0 {
			t.Errorf("got %d failures after the login, want 0", n)
		}
	})
}

func TestDecideTOTPNextFreshCodeAfterOneAhead(t *testing.T) {
	// A phone a little ahead gives a code of the next step; that step and
	// those before it are used, and the phone's next code works as soon
	// as it shows.
	f := newFixture(t)
	res := f.decide(login("alice", ipX))
	check(t, f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(1))), ipX)), want{policy.Accept, "totp_ok", "", "totp"})
	res = f.decide(login("alice", place(0)))
	res = f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(1))), place(0)))
	check(t, res, want{policy.Challenge, "totp_replay", "Wrong code, 2 tries left", "totp"})
	check(t, f.decide(answer("alice", res.State, f.code(), place(0))), want{policy.Challenge, "totp_replay", "Wrong code, 1 try left", "totp"})
	f.advance(otp.Period)
	res = f.decide(login("alice", place(1)))
	check(t, f.decide(answer("alice", res.State, f.codeAt(f.now.Add(steps(1))), place(1))), want{policy.Accept, "totp_ok", "", "totp"})
}

func TestLinkTOTPResync(t *testing.T) {
	// Linking an app on a phone whose clock is off takes two codes in a
	// row, as a login does, and learns the drift.
	f := newFixture(t)
	b := f.user("bob")
	b.PendingTOTP = f.totpUser(store.User{Name: "bob"}).TOTP
	f.addUsers(b)
	res := f.decide(login("bob", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPLink, "totp"})
	far := f.decide(answer("bob", res.State, f.codeAt(f.now.Add(steps(-4))), ipX))
	check(t, far, want{policy.Challenge, "totp_far", msgs.TOTPNext, "totp"})
	if u := f.user("bob"); u.TOTP != nil {
		t.Fatalf("linked after one code too far out: %+v", u.TOTP)
	}
	f.advance(otp.Period)
	check(t, f.decide(answer("bob", far.State, f.codeAt(f.now.Add(steps(-4))), ipX)), want{policy.Accept, "totp_linked", msgs.TOTPLinked, "totp"})
	if u := f.user("bob"); u.TOTP == nil || u.TOTP.Drift != -4 {
		t.Errorf("got %+v, want TOTP active with drift -4", u.TOTP)
	}
}
