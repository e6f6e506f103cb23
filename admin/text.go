package admin

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Printable writes s so that a terminal shows it as text: control
// characters (C0, DEL, C1), other characters that do not print (such as
// bidirectional overrides and zero-width marks) and bytes that are not
// UTF-8 become visible escapes — \n, \r, \t, \x1b, \u202e — so that no user
// name, address or reason can start a line of its own, move the cursor or
// clear the screen. Characters outside the basic plane are escaped as a
// UTF-16 pair (\ud83d\udc4d form), which keeps JSON text valid JSON.
func Printable(s string) string { return escape(s, false) }

// printableText is Printable for a whole reply: it keeps line feeds and
// tabs, the layout of what the commands print, and escapes the rest.
func printableText(s string) string { return escape(s, true) }

func escape(s string, layout bool) string {
	clean := func(r rune) bool {
		return r != utf8.RuneError && (r == ' ' || unicode.IsPrint(r) || layout && (r == '\n' || r == '\t'))
	}
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !clean(r) && !(r == utf8.RuneError && n == 3) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == utf8.RuneError, clean(r):
			b.WriteString(s[i : i+n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}
