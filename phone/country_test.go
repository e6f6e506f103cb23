package phone_test

import (
	"testing"

	"github.com/otpgate/otpgate/phone"
)

func TestCountryCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+12025550123", "1"},
		{"+79161234567", "7"},
		{"+31612345678", "31"},
		{"+447700900123", "44"},
		{"+4915112345678", "49"},
		{"+27821234567", "27"},
		{"+352621123456", "352"},
		{"+353871234567", "353"},
		{"+212612345678", "212"}, // Morocco: 21 is not a code of its own
		{"+3161234", "31"},
		{"+316123456789012", "31"},
		// Not E.164.
		{"31612345678", ""},
		{"+31 6 12345678", ""},
		{"+316123", ""},
		{"+3161234567890123", ""},
		{"+0612345678", ""},
		{"+3161234567a", ""},
		{"+", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := phone.CountryCode(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidCountryCode(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1", true},
		{"7", true},
		{"20", true},
		{"31", true},
		{"32", true},
		{"49", true},
		{"98", true},
		{"212", true},
		{"352", true},
		{"353", true},
		{"999", true}, // spare, but shaped like a code
		// Not codes.
		{"", false},
		{"0", false},
		{"031", false},
		{"3", false},   // a zone, not a code
		{"21", false},  // codes in 21 have three digits
		{"310", false}, // 31 is the code, so no code starts 31 and has three digits
		{"12", false},
		{"100", false},
		{"3521", false},
		{"+31", false},
		{" 31", false},
		{"3a", false},
		{"٣١", false}, // Arabic-Indic digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := phone.ValidCountryCode(tt.in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
