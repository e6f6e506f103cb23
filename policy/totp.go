package policy

import (
	"errors"
	"fmt"
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
