package policy

import "testing"

// TestFillPlural: a number's word takes the form for the number, in both
// catalogues: no "1 tries left".
func TestFillPlural(t *testing.T) {
	en, _ := Catalog("en")
	nl, _ := Catalog("nl")
	tests := []struct {
		msg  string
		kv   []string
		want string
	}{
		{en.WrongCode, []string{"{tries}", "1"}, "Wrong code, 1 try left"},
		{en.WrongCode, []string{"{tries}", "2"}, "Wrong code, 2 tries left"},
		{en.WrongCode, []string{"{tries}", "0"}, "Wrong code, 0 tries left"},
		{nl.WrongCode, []string{"{tries}", "1"}, "Onjuiste code, nog 1 poging"},
		{nl.WrongCode, []string{"{tries}", "3"}, "Onjuiste code, nog 3 pogingen"},
		{en.ResendWait, []string{"{seconds}", "1"}, "Please wait 1 second before asking for a new code."},
		{nl.ResendWait, []string{"{seconds}", "12"}, "Wacht 12 seconden voordat u een nieuwe code aanvraagt."},
		{"{n:one|other} and {n:een|meer}: {n}", []string{"{n}", "1"}, "one and een: 1"},
		{"{n:one|other}, {m}", []string{"{n}", "5", "{m}", "x"}, "other, x"},
		{"{n:broken", []string{"{n}", "1"}, "{n:broken"},
		{"{n:solo}", []string{"{n}", "2"}, ""},
	}
	for _, tc := range tests {
		if got := fill(tc.msg, tc.kv...); got != tc.want {
			t.Errorf("fill(%q, %q): got %q, want %q", tc.msg, tc.kv, got, tc.want)
		}
	}
}
