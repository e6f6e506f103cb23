package policy

import (
	"strings"
	"unicode/utf8"
)

// MaskPhone shows an E.164 number with its country code, the first digit
// after it and its last two digits: "+31612345678" becomes "+31 6*****78".
// The stars are always five, so the mask does not tell the length either.
func MaskPhone(e164 string) string {
	digits := strings.TrimPrefix(e164, "+")
	if len(digits) < 7 {
		return strings.Repeat("*", len(digits))
	}
	cc := countryCodeLen(digits)
	rest := digits[cc:]
	return "+" + digits[:cc] + " " + rest[:1] + "*****" + rest[len(rest)-2:]
}

// countryCodeLen guesses the length of the country calling code: 1 for
// North America (1) and Russia/Kazakhstan (7), 2 for the codes ITU zones 2
// to 9 give out in two digits, else 3.
func countryCodeLen(d string) int {
	switch d[0] {
	case '1', '7':
		return 1
	}
	if strings.Contains(twoDigitCountryCodes, " "+d[:2]+" ") {
		return 2
	}
	return 3
}

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

// twoDigitCountryCodes lists the country calling codes of two digits.
const twoDigitCountryCodes = " 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 " +
	"60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98 "
