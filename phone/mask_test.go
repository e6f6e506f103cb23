package phone_test

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/phone"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		// One-digit country codes.
		{"+12025550123", "+1 2*****23"},
		{"+79161234567", "+7 9*****67"},
		// Two digits.
		{"+31612345678", "+31 6*****78"},
		{"+447700900123", "+44 7*****23"},
		{"+4915112345678", "+49 1*****78"},
		{"+32470123456", "+32 4*****56"},
		// Three digits.
		{"+352621123456", "+352 6*****56"},
		{"+353871234567", "+353 8*****67"},
		// Without the "+" it reads the same.
		{"31612345678", "+31 6*****78"},
		// Seven digits is the shortest number Parse gives.
		{"+3161234", "+31 6*****34"},
		{"+3521234", "+352 1*****34"},
		// Shorter is not a number: only stars, one per digit.
		{"+316123", "******"},
		{"+1", "*"},
		{"+", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := phone.Mask(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(tt.in) > 4 && strings.Contains(got, tt.in[len(tt.in)-5:]) {
				t.Errorf("got %q, want no five digits of %q in a row", got, tt.in)
			}
		})
	}
}

func TestMaskHidesLength(t *testing.T) {
	short, long := phone.Mask("+3161234"), phone.Mask("+316123456789012")
	if len(short) != len(long) {
		t.Errorf("got masks %q and %q of different lengths, want the same", short, long)
	}
}
