package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// ErrNoPendingTOTP is returned by ConfirmTOTP for a user who is not linking
// an authenticator app.
var ErrNoPendingTOTP = errors.New("no authenticator app is being linked")

// ErrWrongCode is returned by ConfirmTOTP for a code that does not match.
var ErrWrongCode = errors.New("the code does not match")

// ConfirmTOTP makes u's pending TOTP active when code is right for it, as
// a right code at login does; the caller stores u.
func ConfirmTOTP(key *secret.Key, u *store.User, code string, now time.Time) error {
	if u.PendingTOTP == nil {
		return ErrNoPendingTOTP
	}
	step, reason, err := matchTOTP(key, u.Name, u.PendingTOTP, code, now)
	if err != nil {
		return err
	}
	if reason != "" {
		return ErrWrongCode
	}
	activate(u, step, now)
	return nil
}

// matchTOTP checks code against tot: around the drift learned so far
// first, then anywhere within otp.MaxDrift, for a phone whose clock has
// moved since. It returns the step matched, or why not as an audit reason.
func matchTOTP(key *secret.Key, user string, tot *store.TOTP, code string, now time.Time) (int64, string, error) {
	secretText, err := key.Open(tot.Sealed, totpContext(user))
	if err != nil {
		return 0, "", fmt.Errorf("open totp secret of %s: %w", user, err)
	}
	step, ok := otp.MatchTOTPNear(string(secretText), code, now, tot.Drift, otp.Skew)
	if !ok {
		step, ok = otp.MatchTOTPNear(string(secretText), code, now, 0, otp.MaxDrift)
	}
	switch {
	case !ok:
		return 0, "wrong_code", nil
	case step <= tot.LastStep:
		return 0, "totp_replay", nil
	}
	return step, "", nil
}

// activate makes u's pending TOTP the one in use, proved at step.
func activate(u *store.User, step int64, now time.Time) {
	t := *u.PendingTOTP
	t.LastStep, t.Drift = step, int(step-otp.Step(now))
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
