package phone

// CountryCode returns the country calling code of an E.164 number ("31"
// for "+31612345678"), or "" if it is not E.164.
func CountryCode(e164 string) string {
	if !isE164(e164) {
		return ""
	}
	d := e164[1:]
	return d[:countryCodeLen(d)]
}

// ValidCountryCode reports whether s is a country calling code that is
// assigned or at least well-formed per the ITU prefix structure: 1 to 3
// digits, no leading 0, and as long as the structure says a code starting
// with those digits is. So "1", "31" and "352" are, "3" and "310" are not.
// It is meant for config: a tenant's code and allow-lists such as
// ["31", "32", "49"].
func ValidCountryCode(s string) bool {
	if len(s) < 1 || len(s) > 3 || s[0] == '0' {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return countryCodeLen(s) == len(s)
}

// isE164 reports whether s is "+" and 7 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 1+minDigits || len(s) > 1+maxDigits || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// countryCodeLen tells the length of the country calling code that digits d
// start with, from ITU's prefix-free structure: 1 for North America (1) and
// Russia and Kazakhstan (7), 2 for the codes ITU zones 2 to 9 give out in
// two digits, else 3. d must not be empty.
func countryCodeLen(d string) int {
	switch {
	case d[0] == '1' || d[0] == '7':
		return 1
	case len(d) >= 2 && twoDigit(d[:2]):
		return 2
	}
	return 3
}

// twoDigit reports whether cc is one of the country calling codes of two
// digits.
func twoDigit(cc string) bool {
	switch cc {
	case "20", "27",
		"30", "31", "32", "33", "34", "36", "39",
		"40", "41", "43", "44", "45", "46", "47", "48", "49",
		"51", "52", "53", "54", "55", "56", "57", "58",
		"60", "61", "62", "63", "64", "65", "66",
		"81", "82", "84", "86",
		"90", "91", "92", "93", "94", "95", "98":
		return true
	}
	return false
}
