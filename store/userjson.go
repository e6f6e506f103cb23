package store

import (
	"encoding/base64"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// readUserJSON decodes a user's record as json.Marshal writes it, in a
// fraction of encoding/json's time: decoding the record was most of what
// a login's first round cost otpgate's CPU, after the system calls. It
// reads only the plainest form of the record: keys as User's tags spell
// them, each at most once, no white space, no null, no escape in a string,
// integers without fraction or exponent. For anything else ok is false and
// the caller hands the record to encoding/json, so that a record decodes
// to the same User whichever of the two reads it (FuzzReadUserJSON holds
// it to that).
func readUserJSON(b []byte) (User, bool) {
	var u User
	r := jsonReader{b: b}
	r.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "name":
			u.Name, ok = r.str()
		case "tenant":
			u.Tenant, ok = r.str()
		case "two_factor":
			u.TwoFactor, ok = r.str()
		case "method":
			u.Method, ok = r.str()
		case "backup_method":
			u.BackupMethod, ok = r.str()
		case "phone":
			u.Phone, ok = r.str()
		case "email":
			u.Email, ok = r.str()
		case "home_ips":
			u.HomeIPs = []netip.Prefix{}
			ok = r.array(func() bool {
				var p netip.Prefix
				s, ok := r.strBytes()
				if ok && p.UnmarshalText(s) == nil {
					u.HomeIPs = append(u.HomeIPs, p)
					return true
				}
				return false
			})
		case "password_hash":
			u.PasswordHash, ok = r.str()
		case "totp":
			u.TOTP, ok = r.totp()
		case "pending_totp":
			u.PendingTOTP, ok = r.totp()
		case "recovery":
			u.Recovery = [][]byte{}
			ok = r.array(func() bool {
				h, ok := r.bytes()
				u.Recovery = append(u.Recovery, h)
				return ok
			})
		case "failures":
			u.Failures = []time.Time{}
			ok = r.array(func() bool {
				t, ok := r.time()
				u.Failures = append(u.Failures, t)
				return ok
			})
		case "locked_until":
			u.LockedUntil, ok = r.time()
		case "remembered":
			u.Remembered = []RememberedIP{}
			ok = r.array(func() bool {
				var m RememberedIP
				ok := r.object(func(key []byte) bool {
					switch string(key) {
					case "ip":
						s, ok := r.strBytes()
						return ok && m.IP.UnmarshalText(s) == nil
					case "until":
						var ok bool
						m.Until, ok = r.time()
						return ok
					}
					return false
				})
				u.Remembered = append(u.Remembered, m)
				return ok
			})
		case "reply":
			u.Reply = []string{}
			ok = r.array(func() bool {
				s, ok := r.str()
				u.Reply = append(u.Reply, s)
				return ok
			})
		case "invite":
			u.Invite, ok = r.invite()
		case "created":
			u.Created, ok = r.time()
		case "updated":
			u.Updated, ok = r.time()
		default:
			return false
		}
		return ok
	})
	return u, r.done()
}

// totp reads a TOTP object.
func (r *jsonReader) totp() (*TOTP, bool) {
	t := &TOTP{}
	ok := r.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "sealed":
			t.Sealed, ok = r.bytes()
		case "last_step":
			t.LastStep, ok = r.int(64)
		case "drift":
			t.Drift, ok = r.intValue()
		case "created":
			t.Created, ok = r.time()
		}
		return ok
	})
	return t, ok
}

// invite reads an Invite object.
func (r *jsonReader) invite() (*Invite, bool) {
	in := &Invite{}
	ok := r.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "hash":
			in.Hash, ok = r.bytes()
		case "created":
			in.Created, ok = r.time()
		case "expires":
			in.Expires, ok = r.time()
		case "via":
			in.Via, ok = r.str()
		case "failures":
			in.Failures, ok = r.intValue()
		}
		return ok
	})
	return in, ok
}

// jsonReader reads JSON as json.Marshal writes it. Once a read fails,
// failed is set and every later read fails too.
type jsonReader struct {
	b      []byte
	i      int
	failed bool
}

// done reports whether everything read so far was in the plain form and
// nothing follows it.
func (r *jsonReader) done() bool { return !r.failed && r.i == len(r.b) }

// next consumes c, the next byte.
func (r *jsonReader) next(c byte) bool {
	if r.failed || r.i >= len(r.b) || r.b[r.i] != c {
		r.failed = true
		return false
	}
	r.i++
	return true
}

// peek reports whether c is the next byte.
func (r *jsonReader) peek(c byte) bool { return !r.failed && r.i < len(r.b) && r.b[r.i] == c }

// object reads an object, handing each key to field, which reads its
// value; a key met twice, or one field does not know (it returns false),
// fails.
func (r *jsonReader) object(field func(key []byte) bool) bool {
	if !r.next('{') {
		return false
	}
	seen := make([][]byte, 0, 24)
	for first := true; !r.peek('}'); first = false {
		if !first && !r.next(',') {
			return false
		}
		key, ok := r.strBytes()
		if !ok || !r.next(':') {
			r.failed = true
			return false
		}
		for _, k := range seen {
			if string(k) == string(key) {
				r.failed = true
				return false
			}
		}
		seen = append(seen, key)
		if !field(key) {
			r.failed = true
			return false
		}
	}
	return r.next('}')
}

// array reads an array, each element with elem.
func (r *jsonReader) array(elem func() bool) bool {
	if !r.next('[') {
		return false
	}
	for first := true; !r.peek(']'); first = false {
		if !first && !r.next(',') {
			return false
		}
		if !elem() {
			r.failed = true
			return false
		}
	}
	return r.next(']')
}

// strBytes reads a string with no escape and no control character in it,
// in valid UTF-8, and returns what is between its quotes.
func (r *jsonReader) strBytes() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	start, ascii := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				r.failed = true
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			r.failed = true
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.failed = true
	return nil, false
}

// str reads a string.
func (r *jsonReader) str() (string, bool) {
	s, ok := r.strBytes()
	return string(s), ok
}

// bytes reads a string of base64, as encoding/json decodes a []byte.
func (r *jsonReader) bytes() ([]byte, bool) {
	s, ok := r.strBytes()
	if !ok {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		r.failed = true
		return nil, false
	}
	return b[:n], true
}

// time reads a time as time.Time's UnmarshalJSON does.
func (r *jsonReader) time() (time.Time, bool) {
	start := r.i
	var t time.Time
	if _, ok := r.strBytes(); !ok || t.UnmarshalJSON(r.b[start:r.i]) != nil {
		r.failed = true
		return time.Time{}, false
	}
	return t, true
}

// intValue reads an integer that fits in an int.
func (r *jsonReader) intValue() (int, bool) {
	n, ok := r.int(strconv.IntSize)
	return int(n), ok
}

// int reads an integer that fits in bits: digits after an optional minus,
// with no leading zero.
func (r *jsonReader) int(bits int) (int64, bool) {
	start := r.i
	if r.peek('-') {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	if r.failed || r.i == digits || r.b[digits] == '0' && r.i-digits > 1 {
		r.failed = true
		return 0, false
	}
	n, err := strconv.ParseInt(string(r.b[start:r.i]), 10, bits)
	if err != nil {
		r.failed = true
		return 0, false
	}
	return n, true
}
