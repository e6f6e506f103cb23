package policy

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"

	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// RecoveryCodes is how many recovery codes a set holds.
const RecoveryCodes = 10

// recoveryDigits is the length of a recovery code: long enough that no
// sent code or TOTP code is one, short enough to read aloud in three
// groups of four.
const recoveryDigits = 12

// NewRecoveryCodes makes a set of recovery codes for user, to be shown
// once, and the keyed hashes to store in their place. rnd nil means
// crypto/rand.
func NewRecoveryCodes(rnd io.Reader, key *secret.Key, user string) (codes []string, hashes [][]byte, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	for range RecoveryCodes {
		var b strings.Builder
		for i := range recoveryDigits {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			var d [1]byte
			for {
				if _, err := io.ReadFull(rnd, d[:]); err != nil {
					return nil, nil, fmt.Errorf("new recovery code: %w", err)
				}
				if d[0] < 250 { // 250 is a multiple of 10: no digit is likelier
					break
				}
			}
			b.WriteByte('0' + d[0]%10)
		}
		code := b.String()
		codes = append(codes, code)
		hashes = append(hashes, key.Hash(recoveryContext(user), normalizeRecovery(code)))
	}
	return codes, hashes, nil
}

// matchRecovery returns the index of the recovery code of u that code is,
// or -1. Every stored hash is compared, in constant time each.
func (e *Engine) matchRecovery(u store.User, code string) int {
	code = normalizeRecovery(code)
	if len(code) != recoveryDigits || len(u.Recovery) == 0 {
		return -1
	}
	found := -1
	for i, h := range u.Recovery {
		if e.key.Equal(h, recoveryContext(u.Name), code) && found < 0 {
			found = i
		}
	}
	return found
}

// normalizeRecovery drops the spaces and dashes people type in codes.
func normalizeRecovery(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}

func recoveryContext(user string) string { return "recovery:" + store.NormalizeName(user) }
