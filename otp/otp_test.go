package otp_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// rfcSecret is the SHA-1 seed of RFC 6238 Appendix B, "12345678901234567890"
// in ASCII, as base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// rfcVectors are RFC 6238 Appendix B's SHA-1 vectors, cut to our 6 digits
// (the last 6 of the RFC's 8, as dynamic truncation is mod 10^digits).
var rfcVectors = []struct {
	unix int64
	code string
}{
	{59, "287082"},
	{1111111109, "081804"},
	{1111111111, "050471"},
	{1234567890, "005924"},
	{2000000000, "279037"},
	{20000000000, "353130"},
}

func TestRFCSecretIsTheRFCSeed(t *testing.T) {
	got, err := base32.StdEncoding.DecodeString(rfcSecret)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "12345678901234567890" {
		t.Fatalf("got seed %q, want %q", got, "12345678901234567890")
	}
}

func TestTOTPCodeRFC6238(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(time.Unix(v.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			got, err := otp.TOTPCode(rfcSecret, time.Unix(v.unix, 0))
			if err != nil {
				t.Fatalf("TOTPCode: %v", err)
			}
			if got != v.code {
				t.Errorf("got %s, want %s", got, v.code)
			}
		})
	}
}

func TestTOTPCodeSecretForms(t *testing.T) {
	// Authenticator exports come lower-case and without padding; both must
	// give the same code as the canonical form.
	at := time.Unix(1111111111, 0)
	for _, s := range []string{rfcSecret, strings.ToLower(rfcSecret), " " + rfcSecret + "\n"} {
		got, err := otp.TOTPCode(s, at)
		if err != nil {
			t.Fatalf("TOTPCode(%q): %v", s, err)
		}
		if got != "050471" {
			t.Errorf("TOTPCode(%q): got %s, want 050471", s, got)
		}
	}
	if _, err := otp.TOTPCode("not base32!", at); err == nil {
		t.Error("TOTPCode with a bad secret: got nil error, want one")
	}
}

func TestMatchTOTPRFC6238(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(v.code, func(t *testing.T) {
			now := time.Unix(v.unix, 0)
			step, ok := otp.MatchTOTP(rfcSecret, v.code, now)
			if !ok {
				t.Fatalf("MatchTOTP(%s at %d): got not ok, want ok", v.code, v.unix)
			}
			if want := v.unix / 30; step != want {
				t.Errorf("got step %d, want %d", step, want)
			}
		})
	}
	// 1111111109 and 1111111111 fall in neighbouring steps: the RFC's own
	// vectors show the skew of one step.
	step, ok := otp.MatchTOTP(rfcSecret, "081804", time.Unix(1111111111, 0))
	if !ok || step != 1111111109/30 {
		t.Errorf("previous-step RFC code: got (%d, %v), want (%d, true)", step, ok, 1111111109/30)
	}
}

func TestMatchTOTPSkew(t *testing.T) {
	now := time.Unix(1234567890, 0)
	current := otp.Step(now)
	codes := map[int64]string{}
	for d := int64(-3); d <= 3; d++ {
		c, err := otp.TOTPCode(rfcSecret, time.Unix((current+d)*30, 0))
		if err != nil {
			t.Fatal(err)
		}
		codes[d] = c
	}
	// The test is only meaningful if the seven codes differ.
	seen := map[string]int64{}
	for d, c := range codes {
		if other, dup := seen[c]; dup {
			t.Fatalf("steps %+d and %+d share code %s; pick another time", d, other, c)
		}
		seen[c] = d
	}
	tests := []struct {
		offset int64
		ok     bool
	}{
		{-3, false},
		{-2, false},
		{-1, true},
		{0, true},
		{1, true},
		{2, false},
		{3, false},
	}
	for _, tt := range tests {
		t.Run(codes[tt.offset], func(t *testing.T) {
			step, ok := otp.MatchTOTP(rfcSecret, codes[tt.offset], now)
			if ok != tt.ok {
				t.Fatalf("code of step %+d: got ok %v, want %v", tt.offset, ok, tt.ok)
			}
			if ok && step != current+tt.offset {
				t.Errorf("code of step %+d: got step %d, want %d", tt.offset, step, current+tt.offset)
			}
		})
	}
}

func TestMatchTOTPStepBoundaries(t *testing.T) {
	// The first and last second of a step belong to the same step.
	code, err := otp.TOTPCode(rfcSecret, time.Unix(30*1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []int64{30*1000 - 30, 30 * 1000, 30*1000 + 29, 30*1000 + 59} {
		step, ok := otp.MatchTOTP(rfcSecret, code, time.Unix(sec, 0))
		if !ok || step != 1000 {
			t.Errorf("at %d: got (%d, %v), want (1000, true)", sec, step, ok)
		}
	}
	for _, sec := range []int64{30*1000 - 31, 30*1000 + 60} {
		if _, ok := otp.MatchTOTP(rfcSecret, code, time.Unix(sec, 0)); ok {
			t.Errorf("at %d: got ok, want not ok (two steps away)", sec)
		}
	}
}

func TestMatchTOTPRefuses(t *testing.T) {
	now := time.Unix(1111111111, 0)
	tests := []struct {
		name, secret, code string
	}{
		{"empty", rfcSecret, ""},
		{"five digits", rfcSecret, "50471"},
		{"seven digits", rfcSecret, "0050471"},
		{"eight-digit RFC code", rfcSecret, "14050471"},
		{"letters", rfcSecret, "05o471"},
		{"wrong code", rfcSecret, "050472"},
		{"other secret", "JBSWY3DPEHPK3PXP", "050471"},
		{"bad secret", "!!!", "050471"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if step, ok := otp.MatchTOTP(tt.secret, tt.code, now); ok {
				t.Errorf("got (%d, true), want not ok", step)
			}
		})
	}
}

func TestMatchTOTPTrimsSpace(t *testing.T) {
	now := time.Unix(1111111111, 0)
	step, ok := otp.MatchTOTP(rfcSecret, " 050471\r\n", now)
	if !ok || step != 1111111111/30 {
		t.Errorf("got (%d, %v), want (%d, true)", step, ok, 1111111111/30)
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix int64
		want int64
	}{
		{0, 0},
		{29, 0},
		{30, 1},
		{59, 1},
		{60, 2},
		{1111111111, 37037037},
	}
	for _, tt := range tests {
		if got := otp.Step(time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("Step(%d): got %d, want %d", tt.unix, got, tt.want)
		}
	}
	// Sub-second parts do not move the step.
	if got := otp.Step(time.Unix(59, 999999999)); got != 1 {
		t.Errorf("Step(59.999999999): got %d, want 1", got)
	}
}

func TestNewCodeLength(t *testing.T) {
	for digits := 4; digits <= 8; digits++ {
		t.Run(strings.Repeat("d", digits), func(t *testing.T) {
			for range 200 {
				code, err := otp.NewCode(nil, digits)
				if err != nil {
					t.Fatalf("NewCode(nil, %d): %v", digits, err)
				}
				if len(code) != digits {
					t.Fatalf("got %q (%d characters), want %d digits", code, len(code), digits)
				}
				if strings.Trim(code, "0123456789") != "" {
					t.Fatalf("got %q, want digits only", code)
				}
			}
		})
	}
}

func TestNewCodeOutOfRange(t *testing.T) {
	for _, digits := range []int{-1, 0, 1, 3, 9, 10, 20} {
		code, err := otp.NewCode(nil, digits)
		if err == nil {
			t.Errorf("NewCode(nil, %d): got %q and nil error, want an error", digits, code)
		}
	}
}

func TestNewCodeFromReader(t *testing.T) {
	tests := []struct {
		name   string
		rnd    []byte
		digits int
		want   string
	}{
		// 0x01e240 is 123456, below 10^6.
		{"six", []byte{0x01, 0xe2, 0x40}, 6, "123456"},
		// 0x002a is 42: a small number keeps its leading zeros.
		{"leading zeros", []byte{0x00, 0x2a}, 4, "0042"},
		{"all zero", make([]byte, 4), 8, "00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.NewCode(bytes.NewReader(tt.rnd), tt.digits)
			if err != nil {
				t.Fatalf("NewCode: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNewCodeReaderFails(t *testing.T) {
	boom := errors.New("boom")
	if _, err := otp.NewCode(failingReader{boom}, 6); !errors.Is(err, boom) {
		t.Errorf("got %v, want an error wrapping %v", err, boom)
	}
	if _, err := otp.NewCode(bytes.NewReader([]byte{1}), 6); err == nil {
		t.Error("short reader: got nil error, want one")
	}
}

func TestNewSecret(t *testing.T) {
	got, err := otp.NewSecret(bytes.NewReader(make([]byte, 20)))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("A", 32); got != want {
		t.Errorf("zero secret: got %s, want %s", got, want)
	}

	one, err := otp.NewSecret(bytes.NewReader([]byte("12345678901234567890")))
	if err != nil {
		t.Fatal(err)
	}
	if one != rfcSecret {
		t.Errorf("RFC seed: got %s, want %s", one, rfcSecret)
	}

	random, err := otp.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(random) != 32 || strings.Contains(random, "=") {
		t.Errorf("got %q, want 32 base32 characters without padding", random)
	}
	if norm, err := otp.NormalizeSecret(random); err != nil || norm != random {
		t.Errorf("NormalizeSecret(NewSecret()): got (%q, %v), want (%q, nil)", norm, err, random)
	}

	if _, err := otp.NewSecret(bytes.NewReader(make([]byte, 19))); err == nil {
		t.Error("short reader: got nil error, want one")
	}
}

func TestNormalizeSecret(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: rfcSecret, want: rfcSecret},
		{in: strings.ToLower(rfcSecret), want: rfcSecret},
		{in: "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", want: rfcSecret},
		{in: "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ", want: rfcSecret},
		// 80 bits, RFC 4226's minimum, with and without padding.
		{in: "JBSWY3DPEHPK3PXP", want: "JBSWY3DPEHPK3PXP"},
		{in: "GEZDGNBVGY3TQOJQGEZDG===", want: "GEZDGNBVGY3TQOJQGEZDG"},
		{in: "GEZDGNBVGY3TQ", wantErr: "secret is 64 bits, want at least 80"},
		{in: "", wantErr: "secret is 0 bits, want at least 80"},
		{in: "GEZDGNBVGY3TQOJ1", wantErr: "not base32"},
		{in: "GEZDGNBVGY3TQOJ8", wantErr: "not base32"},
		// A tail of 1, 3 or 6 characters encodes no whole byte.
		{in: rfcSecret + "A", wantErr: "not base32"},
		{in: rfcSecret + "ABC", wantErr: "not base32"},
		{in: rfcSecret + "ABCDEF", wantErr: "not base32"},
		{in: rfcSecret + "AA", want: rfcSecret + "AA"},
		{in: rfcSecret + "AAAA", want: rfcSecret + "AAAA"},
		{in: rfcSecret + "AAAAA", want: rfcSecret + "AAAAA"},
		{in: rfcSecret + "AAAAAAA", want: rfcSecret + "AAAAAAA"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := otp.NormalizeSecret(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got (%q, %v), want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %q", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNormalizeSecretIsUsable(t *testing.T) {
	// Whatever NormalizeSecret accepts must make codes: an enrolment with a
	// secret that cannot would lock the user out at every login.
	base := rfcSecret + rfcSecret
	for n := 0; n <= len(base); n++ {
		s, err := otp.NormalizeSecret(base[:n])
		if err != nil {
			continue
		}
		if _, err := otp.TOTPCode(s, time.Unix(59, 0)); err != nil {
			t.Errorf("%d characters: NormalizeSecret accepted %q but TOTPCode fails: %v", n, s, err)
		}
	}
}

func TestURI(t *testing.T) {
	tests := []struct {
		issuer, account string
	}{
		{"otpgate", "alice"},
		{"ACME Corp", "alice@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			raw := otp.URI(tt.issuer, tt.account, rfcSecret)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("parse %s: %v", raw, err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Errorf("got scheme %q host %q, want otpauth and totp", u.Scheme, u.Host)
			}
			if want := "/" + tt.issuer + ":" + tt.account; u.Path != want {
				t.Errorf("got label %q, want %q", u.Path, want)
			}
			// The Key URI Format encodes values as RFC 3986 says, where "+"
			// is a plus sign: authenticator apps show "ACME+Corp" for a
			// query that encodes the space as "+". Decode it their way.
			params := map[string]string{}
			for _, kv := range strings.Split(u.RawQuery, "&") {
				k, v, _ := strings.Cut(kv, "=")
				dv, err := url.PathUnescape(v)
				if err != nil {
					t.Fatalf("unescape %s: %v", kv, err)
				}
				params[k] = dv
			}
			want := map[string]string{
				"secret": rfcSecret, "issuer": tt.issuer, "algorithm": "SHA1",
				"digits": "6", "period": "30",
			}
			for k, v := range want {
				if params[k] != v {
					t.Errorf("parameter %s: got %q, want %q (query %s)", k, params[k], v, u.RawQuery)
				}
			}
			if len(params) != len(want) {
				t.Errorf("got parameters %v, want exactly %v", params, want)
			}
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestMatchTOTPNear(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	now := time.Unix(1111111111, 0)
	late := now.Add(-time.Minute) // a phone two steps behind
	code, err := otp.TOTPCode(secret, late)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otp.MatchTOTP(secret, code, now); ok {
		t.Fatal("a code two steps old matched with the default skew")
	}
	step, ok := otp.MatchTOTPNear(secret, code, now, -2, 1)
	if !ok || step != otp.Step(late) {
		t.Errorf("with drift -2: got step %d, %v, want %d", step, ok, otp.Step(late))
	}
	if _, ok := otp.MatchTOTPNear(secret, code, now, 0, otp.MaxDrift); !ok {
		t.Errorf("within MaxDrift: got no match")
	}
	if _, ok := otp.MatchTOTPNear(secret, code, now, 2, 1); ok {
		t.Errorf("with drift +2: got a match for a late code")
	}
}

func TestMatchTOTPStep(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	now := time.Unix(1111111111, 0)
	code, err := otp.TOTPCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if !otp.MatchTOTPStep(secret, code, otp.Step(now)) {
		t.Errorf("got no match at its own step")
	}
	for _, s := range []int64{otp.Step(now) - 1, otp.Step(now) + 1} {
		if otp.MatchTOTPStep(secret, code, s) {
			t.Errorf("got a match at step %d, want only %d", s, otp.Step(now))
		}
	}
}

// FuzzMatchTOTPNearAsTOTPCode: MatchTOTPNear finds a code where, and only
// where, TOTPCode (github.com/pquerna/otp) makes it, for any secret.
func FuzzMatchTOTPNearAsTOTPCode(f *testing.F) {
	f.Add(rfcSecret, int64(1111111109), 0, 1, 0)
	f.Add(" gezdgnbvgy3tqojq ", int64(59), 2, 4, -1)
	f.Add("GEZDGNBV", int64(2000000000), -3, 0, 1)
	f.Add("not base32!", int64(1234567890), 0, 1, 0)
	f.Fuzz(func(t *testing.T, secret string, unix int64, drift, skew, pick int) {
		if unix < 0 || unix > 1<<40 || drift < -8 || drift > 8 || skew < 0 || skew > 8 {
			return
		}
		now := time.Unix(unix, 0)
		center := otp.Step(now) + int64(drift)
		s := center + int64(pick%(skew+2)) // one step out of the window too
		code, err := otp.TOTPCode(secret, time.Unix(s*int64(otp.Period/time.Second), 0))
		if err != nil {
			if _, ok := otp.MatchTOTPNear(secret, "123456", now, drift, skew); ok {
				t.Fatalf("secret %q: TOTPCode fails (%v), MatchTOTPNear matches", secret, err)
			}
			return
		}
		// The latest step in the window whose code it is.
		var wantStep int64
		wantOK := false
		for w := center - int64(skew); w <= center+int64(skew); w++ {
			if c, _ := otp.TOTPCode(secret, time.Unix(w*int64(otp.Period/time.Second), 0)); c == code {
				wantStep, wantOK = w, true
			}
		}
		step, ok := otp.MatchTOTPNear(secret, code, now, drift, skew)
		if ok != wantOK || step != wantStep {
			t.Fatalf("secret %q, code %s of step %d, window %d±%d: got (%d, %v), want (%d, %v)", secret, code, s, center, skew, step, ok, wantStep, wantOK)
		}
	})
}
