package admin

import (
	"fmt"
	"strings"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// recoveryCodes makes a new set of recovery codes for a user, stores
// their hashes in place of the old set, and returns the codes: the only
// time they are shown.
func (s *Service) recoveryCodes(name string) (string, error) {
	var codes []string
	err := s.DB.Update(func(tx *store.Tx) error {
		u, err := s.user(tx, name)
		if err != nil {
			return err
		}
		var hashes [][]byte
		codes, hashes, err = policy.NewRecoveryCodes(s.Rand, s.Key, u.Name)
		if err != nil {
			return err
		}
		u.Recovery, u.Updated = hashes, s.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "New recovery codes for %s (any earlier set no longer works).\n", Printable(store.NormalizeName(name)))
	fmt.Fprintf(&b, "Give them to the user now; they are not shown again. Each answers one challenge, in place of a code.\n\n")
	for i, c := range codes {
		fmt.Fprintf(&b, "  %2d.  %s\n", i+1, c)
	}
	return b.String(), nil
}

// resetUser removes what a user enrolled, so that they enrol again at
// their next login: TOTP (in use or pending), recovery codes, remembered
// and proven IPs, and any lockout. Phone, e-mail and home IPs set by an
// administrator stay.
func (s *Service) resetUser(name string) (string, error) {
	err := s.DB.Update(func(tx *store.Tx) error {
		u, err := s.user(tx, name)
		if err != nil {
			return err
		}
		u.TOTP, u.PendingTOTP, u.Recovery, u.Remembered = nil, nil, nil, nil
		u.Failures, u.LockedUntil = nil, time.Time{}
		if err := policy.VoidInvite(tx, &u); err != nil {
			return err
		}
		if u.Method == policy.MethodTOTP {
			u.Method, u.BackupMethod = u.BackupMethod, ""
		}
		if u.BackupMethod == policy.MethodTOTP {
			u.BackupMethod = ""
		}
		u.Updated = s.now()
		if err := tx.ForgetProven(u.Name); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("reset user %s: authenticator app, recovery codes, remembered IPs and any invitation removed; they enrol again at their next login\n", Printable(store.NormalizeName(name))), nil
}

// unlockUser ends a lockout and forgets the wrong codes counted toward one.
func (s *Service) unlockUser(name string) (string, error) {
	var was time.Time
	err := s.DB.Update(func(tx *store.Tx) error {
		u, err := s.user(tx, name)
		if err != nil {
			return err
		}
		was = u.LockedUntil
		u.LockedUntil, u.Failures, u.Updated = time.Time{}, nil, s.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	if s.now().Before(was) {
		return fmt.Sprintf("unlocked user %s\n", Printable(store.NormalizeName(name))), nil
	}
	return fmt.Sprintf("user %s was not locked; their count of wrong codes is cleared\n", Printable(store.NormalizeName(name))), nil
}
