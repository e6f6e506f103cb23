package phone_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/phone"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, def, want string
	}{
		// Dutch mobile, as people write it.
		{"nl plus spaced", "+31 6 12345678", "", "+31612345678"},
		{"nl plus bare", "+31612345678", "", "+31612345678"},
		{"nl 00", "0031612345678", "", "+31612345678"},
		{"nl 00 spaced", "00 31 6 1234 5678", "", "+31612345678"},
		{"nl national dash", "06-12345678", "31", "+31612345678"},
		{"nl national brackets", "(06) 1234 5678", "31", "+31612345678"},
		{"nl trunk in brackets", "+31 (0)6 12345678", "", "+31612345678"},
		{"nl trunk in brackets no space", "+31(0)612345678", "", "+31612345678"},
		{"nl trunk in brackets after 00", "0031 (0)6 1234 5678", "", "+31612345678"},
		{"nl trunk in spaced brackets", "+31 ( 0 ) 6 12345678", "", "+31612345678"},
		{"nl national with trunk in brackets", "(0)6 12345678", "31", "+31612345678"},
		{"nl plus in brackets", "(+31) 6 12345678", "", "+31612345678"},
		{"nl dots", "06.12.34.56.78", "31", "+31612345678"},
		{"nl slash", "06/12345678", "31", "+31612345678"},
		{"nl no-break spaces", "+31\u00a06\u00a012345678", "", "+31612345678"},
		{"nl narrow no-break space", "06\u202f12345678", "31", "+31612345678"},
		{"nl en dash", "06\u201312345678", "31", "+31612345678"},
		{"nl surrounding space", "  +31 6 12345678\n", "", "+31612345678"},
		{"international ignores default", "+31 6 12345678", "49", "+31612345678"},
		// Belgium and Germany.
		{"be mobile", "+32 470 12 34 56", "", "+32470123456"},
		{"be national", "0470 12 34 56", "32", "+32470123456"},
		{"be trunk in brackets", "+32 (0)470 12 34 56", "", "+32470123456"},
		{"de mobile", "+49 151 12345678", "", "+4915112345678"},
		{"de national", "0151 12345678", "49", "+4915112345678"},
		{"de landline slash", "030/1234567", "49", "+49301234567"},
		// North America.
		{"us plus", "+1 (202) 555-0123", "", "+12025550123"},
		{"us national", "2025550123", "1", "+12025550123"},
		{"us national formatted", "(202) 555-0123", "1", "+12025550123"},
		{"us national trunk 1", "1-202-555-0123", "1", "+12025550123"},
		{"ca 00", "001 416 555 0123", "", "+14165550123"},
		// United Kingdom.
		{"uk mobile", "+44 7700 900123", "", "+447700900123"},
		{"uk national", "07700 900123", "44", "+447700900123"},
		{"uk trunk in brackets", "+44 (0)7700 900123", "", "+447700900123"},
		// Three-digit country codes.
		{"lu mobile", "+352 621 123 456", "", "+352621123456"},
		{"lu national", "621 123 456", "352", "+352621123456"},
		{"ie mobile", "+353 87 123 4567", "", "+353871234567"},
		{"ie national", "087 123 4567", "353", "+353871234567"},
		{"ie trunk in brackets", "+353 (0)87 123 4567", "", "+353871234567"},
		// A 0 in brackets elsewhere is a digit like any other.
		{"bracketed 0 inside national number", "+31 6 (0)1234567", "", "+31601234567"},
		// Edges of the length rule.
		{"seven digits", "+31 61234", "", "+3161234"},
		{"seven digits national", "61234", "31", "+3161234"},
		{"fifteen digits", "+31 6 1234 5678 9012", "", "+316123456789012"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.Parse(tt.in, tt.def)
			if err != nil {
				t.Fatalf("got error %q, want %q", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, def, want string
	}{
		{"too short", "12345", "1",
			`"12345" is too short: a phone number has 7 to 15 digits, like +31612345678`},
		{"too short international", "+31 612", "",
			`"+31 612" is too short: a phone number has 7 to 15 digits, like +31612345678`},
		{"too short national", "0612", "31",
			`"0612" is too short: a phone number has 7 to 15 digits, like +31612345678`},
		{"only a plus", "+", "",
			`"+" has no digits: type a phone number like +31612345678`},
		{"only 00", "00", "",
			`"00" is too short: a phone number has 7 to 15 digits, like +31612345678`},
		{"too long", "+31 6 1234 5678 90123", "",
			`"+31 6 1234 5678 90123" is too long: a phone number has 7 to 15 digits, like +31612345678`},
		{"too long national", "06 1234 5678 901234", "31",
			`"06 1234 5678 901234" is too long: a phone number has 7 to 15 digits, like +31612345678`},
		{"letters", "06-FLOWERS", "31",
			`"06-FLOWERS" contains "F": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"extension", "+31 20 123 4567 x12", "",
			`"+31 20 123 4567 x12" contains "x": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"star", "*31#", "",
			`"*31#" contains "*": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"hash", "0612345678#", "31",
			`"0612345678#" contains "#": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"tab inside", "06\t12345678", "31",
			`"06\t12345678" contains "\t": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"square brackets", "+31 [0]6 12345678", "",
			`"+31 [0]6 12345678" contains "[": type only digits and, if you like, spaces or dashes, like +31612345678`},
		{"invalid utf-8", "+31 6\xff12345678", "",
			`"+31 6\xff12345678" is not valid text: type the number in digits, like +31612345678`},
		{"plus in the middle", "31+612345678", "",
			`"31+612345678" has a "+" in the middle: put + only before the country code, like +31612345678`},
		{"two pluses", "++31612345678", "",
			`"++31612345678" has a "+" in the middle: put + only before the country code, like +31612345678`},
		{"empty", "", "",
			`"" has no digits: type a phone number like +31612345678`},
		{"only separators", " (-) ", "31",
			`" (-) " has no digits: type a phone number like +31612345678`},
		{"national without default", "06-12345678", "",
			`"06-12345678" has no country code: give the number with its country code, like +31612345678`},
		{"bare without default", "2025550123", "",
			`"2025550123" has no country code: give the number with its country code, like +31612345678`},
		{"plus then 0", "+06 12345678", "",
			`"+06 12345678" has no country code after "+": a country code does not start with 0; type the number like +31612345678`},
		{"000", "000 612345678", "",
			`"000 612345678" has no country code after "00": a country code does not start with 0; type the number like +31612345678`},
		{"bad default letters", "0612345678", "NL",
			`default country code "NL" is not a country calling code such as 31 or 1`},
		{"bad default with plus", "0612345678", "+31",
			`default country code "+31" is not a country calling code such as 31 or 1`},
		{"bad default too long", "0612345678", "310",
			`default country code "310" is not a country calling code such as 31 or 1`},
		{"bad default zone only", "0612345678", "3",
			`default country code "3" is not a country calling code such as 31 or 1`},
		{"bad default checked for international input", "+31612345678", "0",
			`default country code "0" is not a country calling code such as 31 or 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.Parse(tt.in, tt.def)
			if err == nil {
				t.Fatalf("got %q, want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error %q, want %q", err, tt.want)
			}
			if got != "" {
				t.Errorf("got %q with the error, want \"\"", got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ in, def string }{
		{"+31 6 12345678", ""},
		{"0031612345678", ""},
		{"06-12345678", "31"},
		{"(06) 1234 5678", "31"},
		{"+31 (0)6 12345678", "49"},
		{"1-202-555-0123", "1"},
		{"621 123 456", "352"},
		{"+44 7700 900123", "44"},
		{"31+612345678", "31"},
		{"06-FLOWERS", "31"},
		{"", ""},
		{"(0)", "7"},
		{"\u00a0+\u202f(0)\xff", "1"},
	} {
		f.Add(seed.in, seed.def)
	}
	f.Fuzz(func(t *testing.T, in, def string) {
		phone.Mask(in) // must not panic on anything
		phone.CountryCode(in)
		phone.ValidCountryCode(def)

		got, err := phone.Parse(in, def)
		if err != nil {
			if got != "" {
				t.Errorf("Parse(%q, %q) got %q with error %q, want \"\"", in, def, got, err)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || !strings.HasPrefix(msg, `"`) && !strings.HasPrefix(msg, "default country code ") {
				t.Errorf("Parse(%q, %q) got error %q, want valid UTF-8 that quotes the input", in, def, msg)
			}
			return
		}
		digits, ok := strings.CutPrefix(got, "+")
		if !ok || len(digits) < 7 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" || digits[0] == '0' {
			t.Fatalf("Parse(%q, %q) got %q, want + and 7 to 15 digits, the first not 0", in, def, got)
		}
		cc := phone.CountryCode(got)
		if !phone.ValidCountryCode(cc) {
			t.Errorf("CountryCode(%q) got %q, want a valid country code", got, cc)
		}
		for _, d := range []string{"", "1", "7", "31", "352", def} {
			if again, err := phone.Parse(got, d); again != got || err != nil {
				t.Errorf("Parse(%q, %q) got %q, %v, want %q, nil", got, d, again, err, got)
			}
		}
		if m := phone.Mask(got); !strings.HasPrefix(m, "+"+cc+" ") || !strings.HasSuffix(m, got[len(got)-2:]) {
			t.Errorf("Mask(%q) got %q, want +%s, a space, and the last two digits", got, m, cc)
		}
	})
}
