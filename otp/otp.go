// Package otp makes and checks one-time codes: TOTP (RFC 6238) from an
// authenticator app, and random numeric codes that otpgate sends.
package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Period is the TOTP time step.
const Period = 30 * time.Second

// Digits is the length of TOTP codes.
const Digits = 6

// Skew is how many steps before and after the expected one are accepted:
// the current step, moved by the drift learned for the phone.
const Skew = 1

// Step is the TOTP time step that contains t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// MatchTOTP checks code against secret (base32) at time now, allowing Skew
// steps either way, and returns the latest step whose code it is. Callers
// refuse steps they have accepted before, so that a code works once.
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	return MatchTOTPNear(secret, code, now, 0, Skew)
}

// MaxDrift is the most steps a phone's clock may be learned to be off:
// two minutes either way. A code found that far out is not accepted
// alone; the code after it must follow (see policy).
const MaxDrift = 4

// MatchTOTPNear is MatchTOTP around the step now+drift, with skew steps
// either side. It is how a phone whose clock runs late or early keeps
// working once its drift has been learned.
func MatchTOTPNear(secret, code string, now time.Time, drift, skew int) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != Digits {
		return 0, false
	}
	mac, err := newMAC(secret)
	if err != nil {
		return 0, false
	}
	center := Step(now) + int64(drift)
	var want [Digits]byte
	for s := center - int64(skew); s <= center+int64(skew); s++ {
		stepCode(mac, s, &want)
		// Every step is computed and compared in constant time, so timing
		// does not tell which one matched.
		if subtle.ConstantTimeCompare(want[:], []byte(code)) == 1 {
			step, ok = s, true
		}
	}
	return step, ok
}

// newMAC is the HMAC-SHA1 keyed with a base32 secret, read as
// github.com/pquerna/otp reads it (TOTPCode): spaces around it, missing
// padding and lower case are allowed. The secret is decoded once for all
// the steps a code is checked against, and the HMAC reused.
func newMAC(secret string) (hash.Hash, error) {
	secret = strings.TrimSpace(secret)
	if n := len(secret) % 8; n != 0 {
		secret += strings.Repeat("=", 8-n)
	}
	key, err := base32.StdEncoding.DecodeString(strings.ToUpper(secret))
	if err != nil {
		return nil, otp.ErrValidateSecretInvalidBase32
	}
	return hmac.New(sha1.New, key), nil
}

// stepCode puts the code for step (RFC 4226's HOTP of the step, as RFC
// 6238 has it) in out.
func stepCode(mac hash.Hash, step int64, out *[Digits]byte) {
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(step))
	mac.Reset()
	mac.Write(counter[:])
	var buf [sha1.Size]byte
	sum := mac.Sum(buf[:0])
	off := sum[len(sum)-1] & 0xf
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	v %= 1_000_000 // 10^Digits
	for i := Digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
}

// MatchTOTPStep reports whether code is secret's code for step.
func MatchTOTPStep(secret, code string, step int64) bool {
	_, ok := MatchTOTPNear(secret, code, time.Unix(step*int64(Period/time.Second), 0), 0, 0)
	return ok
}

// TOTPCode is the code for secret at time t, for tests and for confirming
// an enrolment by hand.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{
		Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
}

// NewSecret returns a random 160-bit TOTP secret in base32 without padding.
func NewSecret(rnd io.Reader) (string, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("new totp secret: %w", err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// NormalizeSecret upper-cases a base32 secret, drops spaces and padding,
// and checks that it decodes to at least 80 bits (RFC 4226's minimum).
func NormalizeSecret(s string) (string, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	// The decoder ignores a tail of 1, 3 or 6 characters, which no whole
	// number of bytes encodes to; TOTPCode would then fail on every login.
	if n := len(s) % 8; err != nil || n == 1 || n == 3 || n == 6 {
		return "", fmt.Errorf("secret is not base32 (letters A-Z and digits 2-7)")
	}
	if len(b) < 10 {
		return "", fmt.Errorf("secret is %d bits, want at least 80", len(b)*8)
	}
	return s, nil
}

// URI is the otpauth:// link an authenticator app reads from a QR code.
func URI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(Digits))
	v.Set("period", fmt.Sprint(int(Period/time.Second)))
	return (&url.URL{
		Scheme: "otpauth",
		Host:   "totp",
		Path:   "/" + issuer + ":" + account,
		// The Key URI Format wants RFC 3986 encoding, in which "+" is not a
		// space; Encode escapes a real "+" as %2B, so every "+" left is one.
		RawQuery: strings.ReplaceAll(v.Encode(), "+", "%20"),
	}).String()
}

// NewCode returns a random numeric code of the given length from rnd
// (crypto/rand in production), uniformly distributed.
func NewCode(rnd io.Reader, digits int) (string, error) {
	if digits < 4 || digits > 8 {
		return "", fmt.Errorf("new code: %d digits, want 4 to 8", digits)
	}
	max := big.NewInt(1)
	for range digits {
		max.Mul(max, big.NewInt(10))
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	n, err := rand.Int(rnd, max)
	if err != nil {
		return "", fmt.Errorf("new code: %w", err)
	}
	return fmt.Sprintf("%0*d", digits, n), nil
}
