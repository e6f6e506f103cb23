package admin

import "testing"

// TestColourQR colours the drawing's lines and nothing else: a line with
// any other character, such as a user name made of blocks, stays as it is.
func TestColourQR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"█▀▄ █\n", "\x1b[97;40m█▀▄ █\x1b[0m\n"},
		{"text\n█ █\n\nend", "text\n\x1b[97;40m█ █\x1b[0m\n\nend"},
		{"added user ███\n", "added user ███\n"},
		{"   \n", "   \n"},
		{`█\x1b[2J█` + "\n", `█\x1b[2J█` + "\n"},
	} {
		if got := ColourQR(tc.in); got != tc.want {
			t.Errorf("ColourQR(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
