package store

import (
	"encoding/binary"
	"slices"
	"time"
)

// Two guards against guessing that every node must share, kept in the
// sends bucket beside the send counts (so Prune, backup and copy carry
// them): the sign-in page's count of wrong codes per name, and the TOTP
// steps a user was told were far ("your phone's clock seems off"), which
// are never accepted later. Each is one key per name; in a cluster a
// transaction that reads it commits only if it is unchanged.
const (
	kindSignIn = 's' // lockedUntil, window, then failure times (8 bytes each)
	kindFar    = 'f' // pairs of a step and when no window reaches it (8 bytes each)
)

// SignInFailures are a name's wrong codes on the sign-in page without a
// first factor: the failures within Window, and the lock they led to.
type SignInFailures struct {
	Failures    []time.Time
	Window      time.Duration // the lockout window the failures count in
	LockedUntil time.Time
}

// Spent reports whether f locks nothing at now and holds no failure that
// still counts.
func (f SignInFailures) Spent(now time.Time) bool {
	return !now.Before(f.LockedUntil) && (len(f.Failures) == 0 || now.Sub(f.Failures[len(f.Failures)-1]) >= f.Window)
}

// SignInFailures returns the sign-in page's wrong codes at name.
func (tx *Tx) SignInFailures(name string) SignInFailures {
	return decodeSignIn(tx.kv.get(bucketSends, sendsKey(kindSignIn, NormalizeName(name))))
}

// PutSignInFailures stores f for name; a spent f at now is deleted, so
// that a name's record lasts no longer than its window and lock.
func (tx *Tx) PutSignInFailures(name string, f SignInFailures, now time.Time) error {
	k := sendsKey(kindSignIn, NormalizeName(name))
	if f.Spent(now) {
		return tx.kv.del(bucketSends, k)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(f.LockedUntil.UnixNano()))
	v = binary.BigEndian.AppendUint64(v, uint64(f.Window))
	for _, t := range f.Failures {
		v = binary.BigEndian.AppendUint64(v, uint64(t.UnixNano()))
	}
	return tx.kv.put(bucketSends, k, v)
}

func decodeSignIn(v []byte) SignInFailures {
	var f SignInFailures
	if len(v) < 16 || len(v)%8 != 0 {
		return f
	}
	f.LockedUntil = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	f.Window = time.Duration(binary.BigEndian.Uint64(v[8:]))
	for i := 16; i < len(v); i += 8 {
		f.Failures = append(f.Failures, time.Unix(0, int64(binary.BigEndian.Uint64(v[i:]))))
	}
	return f
}

// maxFarSteps bounds the far steps kept per user: a code found far ends
// the challenge's round, so a user collects a few within the minutes a
// step is kept; past the bound the oldest go.
const maxFarSteps = 64

// AddFarStep records that user was told their code of step was far at
// now, until the time no window of codes reaches step any more, and
// forgets the steps whose time has passed.
func (tx *Tx) AddFarStep(user string, step int64, until, now time.Time) error {
	k := sendsKey(kindFar, NormalizeName(user))
	old := tx.kv.get(bucketSends, k)
	v := make([]byte, 0, len(old)+16)
	for i := 0; i+16 <= len(old); i += 16 {
		s, u := int64(binary.BigEndian.Uint64(old[i:])), int64(binary.BigEndian.Uint64(old[i+8:]))
		if s != step && u >= now.UnixNano() {
			v = append(v, old[i:i+16]...)
		}
	}
	v = v[max(0, len(v)-16*(maxFarSteps-1)):]
	v = binary.BigEndian.AppendUint64(v, uint64(step))
	v = binary.BigEndian.AppendUint64(v, uint64(until.UnixNano()))
	return tx.kv.put(bucketSends, k, v)
}

// decodeFar returns the steps of a far-steps value.
func decodeFar(v []byte) []int64 {
	var steps []int64
	for i := 0; i+16 <= len(v); i += 16 {
		steps = append(steps, int64(binary.BigEndian.Uint64(v[i:])))
	}
	return steps
}

// FarStep reports whether r's user was told their code of step was far.
func (r Read) FarStep(step int64) bool { return slices.Contains(r.far, step) }

// farKey is where the far steps of user are, in the sends bucket.
func farKey(user string) []byte { return sendsKey(kindFar, user) }

// staleGuard reports whether a guard's record under kind is spent at now:
// a sign-in count whose window and lock have passed, far steps no window
// reaches any more.
func staleGuard(kind byte, v []byte, now time.Time) bool {
	switch kind {
	case kindSignIn:
		return decodeSignIn(v).Spent(now)
	case kindClaim: // claims.go
		return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < now.UnixNano()
	case kindFar:
		for i := 0; i+16 <= len(v); i += 16 {
			if int64(binary.BigEndian.Uint64(v[i+8:])) >= now.UnixNano() {
				return false
			}
		}
		return true
	}
	return false
}
