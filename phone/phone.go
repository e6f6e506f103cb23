// Package phone reads phone numbers as people type them, writes them in
// E.164 form ("+31612345678", the form SMS and voice providers take) and
// masks them for prompts.
package phone

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Digits in an E.164 number, country code included.
const (
	minDigits = 7
	maxDigits = 15
)

// example ends every error so that an admin sees what to type instead.
const example = "+31612345678"

// Parse reads a phone number as people type it and returns it in E.164
// form ("+31612345678"). defaultCountry is the tenant's country calling
// code without "+" ("31"), or "" when none is set.
//
// Spaces, dashes, dots, slashes and parentheses are ignored. A number that
// starts with "+" or "00" is international; a trunk "0" in brackets right
// after its country code, as in "+31 (0)6 1234 5678", is dropped. A number
// that starts with one "0" is national: the 0 gives way to defaultCountry.
// Any other number is national without its trunk prefix and gets
// defaultCountry in front; for North America (default "1") a leading "1"
// on eleven digits is taken as the trunk prefix, as in "1 202 555 0123".
// Numbers without a country code are an error when defaultCountry is "".
//
// The error is a sentence that quotes input and says what to type instead.
func Parse(input, defaultCountry string) (string, error) {
	if defaultCountry != "" && !ValidCountryCode(defaultCountry) {
		return "", fmt.Errorf("default country code %q is not a country calling code such as 31 or 1", defaultCountry)
	}
	n, err := scan(input)
	if err != nil {
		return "", err
	}
	d := n.digits
	var cc, national string
	switch {
	case n.plus || strings.HasPrefix(d, "00"):
		prefix := "+"
		if !n.plus {
			prefix, d = "00", d[2:]
		}
		if d == "" {
			return "", tooShort(input)
		}
		if d[0] == '0' {
			return "", fmt.Errorf("%q has no country code after %q: a country code does not start with 0; type the number like %s", input, prefix, example)
		}
		cc = d[:min(countryCodeLen(d), len(d))]
		national = d[len(cc):]
		if slices.Contains(n.zeros, len(n.digits)-len(national)) {
			national = national[1:] // "(0)": the trunk prefix, dialled only at home
		}
	case defaultCountry == "":
		return "", fmt.Errorf("%q has no country code: give the number with its country code, like %s", input, example)
	case d[0] == '0':
		cc, national = defaultCountry, d[1:]
	case defaultCountry == "1" && len(d) == 11 && d[0] == '1':
		// North American area codes never start with 1, so this 1 is the
		// trunk prefix people there dial before long-distance numbers.
		cc, national = defaultCountry, d[1:]
	default:
		cc, national = defaultCountry, d
	}
	// With at most three digits of country code, seven in all leaves the
	// national number its four.
	switch total := len(cc) + len(national); {
	case total < minDigits:
		return "", tooShort(input)
	case total > maxDigits:
		return "", fmt.Errorf("%q is too long: a phone number has %d to %d digits, like %s", input, minDigits, maxDigits, example)
	}
	return "+" + cc + national, nil
}

// tooShort is the error for fewer than seven digits.
func tooShort(input string) error {
	return fmt.Errorf("%q is too short: a phone number has %d to %d digits, like %s", input, minDigits, maxDigits, example)
}

// number is what scan reads from a typed phone number.
type number struct {
	digits string // every digit, in order
	plus   bool   // the number starts with "+"
	zeros  []int  // where in digits a "(0)" stands
}

// scan keeps the digits of input and notes a leading "+" and each "0"
// written alone in brackets. It rejects any character that is not a digit,
// a separator or a leading "+".
func scan(input string) (number, error) {
	var (
		n      number
		digits []byte
		open   = -1 // where in digits the open bracket is, or -1
	)
	s := strings.TrimSpace(input)
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '+':
			if n.plus || len(digits) > 0 {
				return number{}, fmt.Errorf("%q has a \"+\" in the middle: put + only before the country code, like %s", input, example)
			}
			n.plus = true
		case r == '(':
			open = len(digits)
		case r == ')':
			if open >= 0 && len(digits) == open+1 && digits[open] == '0' {
				n.zeros = append(n.zeros, open)
			}
			open = -1
		case isSeparator(r):
		default:
			if r == utf8.RuneError {
				return number{}, fmt.Errorf("%q is not valid text: type the number in digits, like %s", input, example)
			}
			c := s[i : i+utf8.RuneLen(r)]
			return number{}, fmt.Errorf("%q contains %q: type only digits and, if you like, spaces or dashes, like %s", input, c, example)
		}
	}
	if len(digits) == 0 {
		return number{}, fmt.Errorf("%q has no digits: type a phone number like %s", input, example)
	}
	n.digits = string(digits)
	return n, nil
}

// isSeparator reports whether r may stand between digits without meaning
// anything: the ASCII ones people type and the look-alikes word processors
// and web pages put in their place.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '-', '.', '/',
		'\u00a0', // no-break space
		'\u202f', // narrow no-break space
		'\u2011', // non-breaking hyphen
		'\u2013': // en dash
		return true
	}
	return false
}
