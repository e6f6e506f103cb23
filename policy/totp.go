package policy

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// ErrNoPendingTOTP is returned by ConfirmTOTP for a user who is not linking
// an authenticator app.
var ErrNoPendingTOTP = errors.New("no authenticator app is being linked")

// ErrWrongCode is returned by ConfirmTOTP for a code that does not match.
var ErrWrongCode = errors.New("the code does not match")

// ConfirmTOTP makes u's pending TOTP active when code is right for it,
// within otp.MaxDrift of now, and learns how far the phone's clock is
// off; the caller stores u. It serves an administrator who has the
// user's phone in front of them, not a login: a login takes a code this
// far out only with the next one after it (see matchTOTP).
func ConfirmTOTP(key *secret.Key, u *store.User, code string, now time.Time) error {
	if u.PendingTOTP == nil {
		return ErrNoPendingTOTP
	}
	secretText, err := openTOTP(key, u.Name, u.PendingTOTP)
	if err != nil {
		return err
	}
	step, ok := otp.MatchTOTPNear(secretText, code, now, 0, otp.MaxDrift)
	if !ok || step <= u.PendingTOTP.LastStep {
		return ErrWrongCode
	}
	activate(u, step, int(step-otp.Step(now)))
	return nil
}

// matchTOTP checks code against tot as the answer to ch. A code is
// accepted within otp.Skew steps of the drift learned for the phone, or,
// when ch waits for the code after one found further out, only if it is
// that next code, still at the offset the first was found at. A code
// found further out than a step from the drift, but within otp.MaxDrift
// of the server's clock, is not accepted alone: the reason is
// "totp_far", with its step, and the next code must follow it. A step
// not after tot.LastStep is a replay. It returns the step matched and,
// when the code is not accepted, why as an audit reason.
func matchTOTP(key *secret.Key, user string, tot *store.TOTP, code string, now time.Time, ch live.Challenge) (int64, string, error) {
	secretText, err := openTOTP(key, user, tot)
	if err != nil {
		return 0, "", err
	}
	var step int64
	ok, far := false, false
	if ch.NextStep != 0 {
		step = ch.NextStep
		ok = otp.MatchTOTPStep(secretText, code, step) && abs(step-otp.Step(now)-int64(ch.NextDrift)) <= otp.Skew
	} else {
		step, ok = otp.MatchTOTPNear(secretText, code, now, tot.Drift, otp.Skew)
		if !ok {
			step, ok = otp.MatchTOTPNear(secretText, code, now, 0, otp.MaxDrift)
			far = ok
		}
	}
	switch {
	case !ok:
		return 0, "wrong_code", nil
	case step <= tot.LastStep:
		return 0, "totp_replay", nil
	case far:
		return step, "totp_far", nil
	}
	return step, "", nil
}

// openTOTP returns the base32 secret of tot, sealed for user.
func openTOTP(key *secret.Key, user string, tot *store.TOTP) (string, error) {
	secretText, err := key.Open(tot.Sealed, totpContext(user))
	if err != nil {
		return "", fmt.Errorf("open totp secret of %s: %w", user, err)
	}
	return string(secretText), nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// activate makes u's pending TOTP the one in use, proved at step, from a
// phone whose clock is drift steps off.
func activate(u *store.User, step int64, drift int) {
	t := *u.PendingTOTP
	t.LastStep, t.Drift = step, drift
	UseTOTP(u, &t)
}

// UseTOTP makes t u's TOTP in use and TOTP their primary method; the
// method it replaces becomes the backup unless there is one. A pending
// secret is dropped.
func UseTOTP(u *store.User, t *store.TOTP) {
	u.TOTP, u.PendingTOTP = t, nil
	if u.Method != MethodTOTP {
		if u.BackupMethod == "" || u.BackupMethod == MethodTOTP {
			u.BackupMethod = u.Method
		}
		u.Method = MethodTOTP
	}
}

// SealTOTP seals a base32 TOTP secret for user.
func SealTOTP(key *secret.Key, user, secretText string) ([]byte, error) {
	return key.Seal([]byte(secretText), totpContext(store.NormalizeName(user)))
}

// farSteps are the TOTP steps whose codes were found further out than a
// step from a user's drift, and said so ("your phone's clock seems off").
// Such a code is never accepted later, when its step comes near: the
// answer told whoever typed it that it is a code, so accepting it then
// would try each guess against the steps ahead as well as the three near.
// A phone ahead has moved on past that step by the time it comes near.
// They live in memory, as the challenges do; the zero value is ready.
type farSteps struct {
	mu sync.Mutex
	by map[string][]int64
}

// saw records that user's code of step was found far at now, and forgets
// the steps no window can reach any more.
func (f *farSteps) saw(user string, step int64, now time.Time) {
	oldest := otp.Step(now) - otp.MaxDrift - otp.Skew
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.by == nil {
		f.by = map[string][]int64{}
	}
	for name, steps := range f.by {
		steps = slices.DeleteFunc(steps, func(s int64) bool { return s < oldest })
		if len(steps) == 0 {
			delete(f.by, name)
		} else {
			f.by[name] = steps
		}
	}
	if !slices.Contains(f.by[user], step) {
		f.by[user] = append(f.by[user], step)
	}
}

// seen reports whether user's code of step was found far.
func (f *farSteps) seen(user string, step int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.by[user], step)
}
