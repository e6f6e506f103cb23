package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// enrolTOTP gives a user an authenticator-app secret, sealed with the
// server's key, and returns the otpauth URI with a QR code for the
// terminal. A new secret is pending until the user proves a code from it
// (at login, or with --confirm); an imported one is in use already on the
// user's phone, so it is active at once.
func (s *Service) enrolTOTP(name, imported string, allowShort bool) (string, string, error) {
	var secretText string
	var err error
	if imported != "" {
		secretText, err = checkSecret("--secret", imported, allowShort, "user totp NAME --secret SECRET --allow-short-secret")
		if err != nil {
			return "", "", err
		}
	} else {
		rnd := s.Rand
		if rnd == nil {
			rnd = rand.Reader
		}
		secretText, err = otp.NewSecret(rnd)
		if err != nil {
			return "", "", err
		}
	}
	var u store.User
	err = s.DB.Update(func(tx *store.Tx) error {
		var err error
		u, err = s.user(tx, name)
		if err != nil {
			return err
		}
		sealed, err := policy.SealTOTP(s.Key, u.Name, secretText)
		if err != nil {
			return err
		}
		t := &store.TOTP{Sealed: sealed, Created: s.now()}
		if imported == "" {
			u.PendingTOTP = t
		} else {
			policy.UseTOTP(&u, t)
		}
		u.Updated = s.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return "", "", err
	}
	issuer := s.Issuer
	if issuer == "" {
		issuer = "otpgate"
	}
	uri := otp.URI(issuer, u.Name, secretText)
	qr, err := terminalQR(uri)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	if imported == "" {
		fmt.Fprintf(&b, "TOTP secret made for %s. It becomes active once a code from it is proved: at their next login,\n", Printable(u.Name))
		fmt.Fprintf(&b, "or now with: otpgate user totp %s --confirm CODE\n", Printable(u.Name))
	} else {
		fmt.Fprintf(&b, "TOTP secret imported for %s; it is now their primary method.\n", Printable(u.Name))
	}
	fmt.Fprintf(&b, "Scan this code with an authenticator app, or enter the link by hand:\n\n%s\n%s\n", qr, uri)
	if t := s.tenant(u.Tenant); t != nil && !slices.Contains(t.Methods, policy.MethodTOTP) {
		fmt.Fprintf(&b, "\nNote: tenant %s does not list totp in methods:, so it will not be asked for.\n", t.Name)
	}
	return b.String(), uri, nil
}

// minSecretBits is the shortest secret taken without --allow-short-secret:
// RFC 4226 §4 requires 128 bits and recommends 160, which is what
// otpgate makes.
const minSecretBits = 128

// checkSecret reads a base32 TOTP secret given by the admin (label names
// where). Secrets under 128 bits are refused unless allowShort; hint is
// the command that allows one.
func checkSecret(label, text string, allowShort bool, hint string) (string, error) {
	norm, err := otp.NormalizeSecret(text)
	if err != nil {
		return "", usagef("%s: %v", label, err)
	}
	if bits := len(norm) * 5 / 8 * 8; bits < minSecretBits && !allowShort {
		return "", usagef("%s: the secret is %d bits; a new one needs at least %d (RFC 4226 §4), as the 160-bit ones otpgate makes have. "+
			"To move an enrolment made elsewhere with a shorter secret, use: otpgate %s", label, bits, minSecretBits, hint)
	}
	return norm, nil
}

// confirmTOTP activates a pending secret with a code from it.
func (s *Service) confirmTOTP(name, code string) (string, error) {
	if len(code) != 6 || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", usagef("--confirm %q: a code is the 6 digits the authenticator app shows, such as 123456", clip(code))
	}
	err := s.DB.Update(func(tx *store.Tx) error {
		u, err := s.user(tx, name)
		if err != nil {
			return err
		}
		switch err := policy.ConfirmTOTP(s.Key, &u, code, s.now()); {
		case errors.Is(err, policy.ErrNoPendingTOTP):
			return usagef("%s is not linking an authenticator app; start with: otpgate user totp %s", u.Name, u.Name)
		case errors.Is(err, policy.ErrWrongCode):
			return usagef("--confirm: that code does not match; check the phone's clock and try the code it shows now")
		case err != nil:
			return err
		}
		u.Updated = s.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("TOTP confirmed for %s; it is now their primary method.\n", Printable(store.NormalizeName(name))), nil
}

// user reads a user in tx, or says how to add one.
func (s *Service) user(tx *store.Tx, name string) (store.User, error) {
	u, err := tx.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return u, failf("no user %s; add one with: otpgate user add %s", clip(store.NormalizeName(name)), clip(name))
	}
	return u, err
}
