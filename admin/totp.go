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
// server's key, makes TOTP their primary method, and returns the otpauth
// URI with a QR code for the terminal.
func (s *Service) enrolTOTP(name, imported string) (string, string, error) {
	var secretText string
	var err error
	if imported != "" {
		secretText, err = otp.NormalizeSecret(imported)
		if err != nil {
			return "", "", usagef("--secret: %v", err)
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
		u, err = tx.User(name)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("no user %s; add one first with: otpgate user add %s", store.NormalizeName(name), name)
		}
		if err != nil {
			return err
		}
		sealed, err := s.Key.Seal([]byte(secretText), "totp:"+u.Name)
		if err != nil {
			return err
		}
		u.TOTP = &store.TOTP{Sealed: sealed}
		u.Method = policy.MethodTOTP
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
	fmt.Fprintf(&b, "TOTP enrolled for %s; it is now their primary method.\n", u.Name)
	fmt.Fprintf(&b, "Scan this code with an authenticator app, or enter the link by hand:\n\n%s\n%s\n", qr, uri)
	if t := s.tenant(u.Tenant); t != nil && !slices.Contains(t.Methods, policy.MethodTOTP) {
		fmt.Fprintf(&b, "\nNote: tenant %s does not list totp in methods:, so it will not be asked for.\n", t.Name)
	}
	return b.String(), uri, nil
}
