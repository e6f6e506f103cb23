package admin

import (
	"encoding/json"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice", "alice"},
		{"Jürgen Müller €", "Jürgen Müller €"},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"\x1b[2J\x07\x00\x7f", `\x1b[2J\x07\x00\x7f`},
		{"c1\u009b2J\u0085", `c1\u009b2J\u0085`},
		{"bidi\u202egnp.exe\u200b\u2028", `bidi\u202egnp.exe\u200b\u2028`},
		{"bad\xff\xfeend", `bad\xff\xfeend`},
		{"tag\U000E0001", `tag\udb40\udc01`},
		{"kept \uFFFD", "kept \uFFFD"},
		{`back\slash`, `back\slash`},
	} {
		if got := Printable(c.in); got != c.want {
			t.Errorf("Printable(%q): got %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := printableText("line\n\tnext\x1b[0m"), "line\n\tnext\\x1b[0m"; got != want {
		t.Errorf("printableText: got %q, want %q", got, want)
	}
}

// TestPrintableKeepsJSON checks that escaping the JSON of the audit log
// leaves JSON that decodes to the same text.
func TestPrintableKeepsJSON(t *testing.T) {
	in := "c1\u009b2J bidi\u202e tag\U000E0001 \u2028 ok"
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal([]byte(printableText(string(b))), &out); err != nil || out != in {
		t.Errorf("got %q (%v), want %q", out, err, in)
	}
}

func TestCellText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice", "alice"},
		{"=1+2", "'=1+2"},
		{"+evil", "'+evil"},
		{"-2+3", "'-2+3"},
		{"@sum(A1)", "'@sum(A1)"},
		{"'=x", "''=x"},
		{"'plain", "'plain"},
		{"+31612345678", "+31612345678"},
		{"\t=x", `\t=x`},
		{"", ""},
	} {
		got := cellText(c.in)
		if got != c.want {
			t.Errorf("cellText(%q): got %q, want %q", c.in, got, c.want)
		}
		if back := cellValue(got); back != Printable(c.in) {
			t.Errorf("cellValue(%q): got %q, want %q", got, back, Printable(c.in))
		}
	}
}
