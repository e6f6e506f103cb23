package phone

import "strings"

// Mask shows an E.164 number with its country code, the first digit after
// it and its last two digits: "+31612345678" becomes "+31 6*****78". The
// stars are always five, so the mask does not tell the length either.
// Fewer than seven digits become as many stars.
func Mask(e164 string) string {
	digits := strings.TrimPrefix(e164, "+")
	if len(digits) < minDigits {
		return strings.Repeat("*", len(digits))
	}
	cc := countryCodeLen(digits)
	rest := digits[cc:]
	return "+" + digits[:cc] + " " + rest[:1] + "*****" + rest[len(rest)-2:]
}
