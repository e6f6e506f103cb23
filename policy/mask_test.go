package policy_test

import (
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/policy"
)

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
