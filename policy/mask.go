package policy

import (
	"strings"
	"unicode/utf8"
)

// MaskEmail keeps the first letter of the mailbox and the domain:
// "alice@example.com" becomes "a***@example.com".
func MaskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "***"
	}
	_, first := utf8.DecodeRuneInString(addr) // a whole letter, not its first byte
	return addr[:first] + "***" + addr[at:]
}
