package policy_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/policy"
)

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+31612345678", "+31 6*****78"},
		{"+447700900123", "+44 7*****23"},
		{"+4915112345678", "+49 1*****78"},
		{"+12025550123", "+1 2*****23"},
		{"+79161234567", "+7 9*****67"},
		{"+352621123456", "+352 6*****56"},
		{"+32470123456", "+32 4*****56"},
		{"31612345678", "+31 6*****78"},
		// Seven digits is the shortest number the product accepts.
		{"+3161234", "+31 6*****34"},
		{"+3521234", "+352 1*****34"},
		{"+316123", "******"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := policy.MaskPhone(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(tt.in) > 4 && strings.Contains(got, tt.in[len(tt.in)-5:]) {
				t.Errorf("mask %q shows five digits of %q", got, tt.in)
			}
		})
	}
}

func TestMaskPhoneHidesLength(t *testing.T) {
	short, long := policy.MaskPhone("+31612345678"), policy.MaskPhone("+3161234567878")
	if len(short) != len(long) {
		t.Errorf("got masks %q and %q of different lengths, want the same", short, long)
	}
}

func TestMaskEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.com", "a***@example.com"},
		{"a@example.com", "a***@example.com"},
		{"first.last@sub.example.org", "f***@sub.example.org"},
		{`"odd@name"@example.com`, `"***@example.com`},
		{"éva@example.nl", "é***@example.nl"},
		{"@example.com", "***"},
		{"no-at-sign", "***"},
		{"", "***"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := policy.MaskEmail(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// Reply-Message is RADIUS text, which is UTF-8.
			if !utf8.ValidString(got) {
				t.Errorf("got %q, want valid UTF-8", got)
			}
		})
	}
}
