package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// Challenge is a question otpgate asked in an Access-Challenge and is
// waiting to hear answered. It is found by the State the gateway echoes.
type Challenge struct {
	// ID is the State attribute's value.
	ID string `json:"id"`
	// User and Client bind the challenge: an answer from another user or
	// another gateway does not match.
	User   string `json:"user"`
	Client string `json:"client"`
	// Method is how the code reaches the user: "totp", "sms", "email" or "voice".
	Method string `json:"method"`
	// CodeHash is the keyed hash of a sent code; empty for TOTP.
	CodeHash []byte `json:"code_hash,omitempty"`
	// Salt goes into CodeHash; it stays when a wrong answer gives the
	// challenge a new ID.
	Salt string `json:"salt,omitempty"`
	// Destination is the masked place a code was sent to, for prompts.
	Destination string `json:"destination,omitempty"`
	// EndUserIP is where the login came from; invalid when unknown.
	EndUserIP netip.Addr `json:"ip"`
	// Attempts counts wrong answers so far.
	Attempts int `json:"attempts"`
	// Sent is when the current code was sent; zero for TOTP.
	Sent time.Time `json:"sent,omitzero"`
	// Enrol is what proving this challenge enrols: "" nothing, "link" the
	// user's pending TOTP, "phone" the number in To, "ask_phone" nothing
	// yet (the answer is a phone number, not a code).
	Enrol string `json:"enrol,omitempty"`
	// To is the phone number being enrolled, for Enrol "phone".
	To string `json:"to,omitempty"`
	// Expires is when the challenge stops being answerable.
	Expires time.Time `json:"expires"`
}

// Challenge returns the challenge with the given ID or ErrNotFound.
func (tx *Tx) Challenge(id string) (Challenge, error) {
	var c Challenge
	v := tx.tx.Bucket(bucketChallenges).Get([]byte(id))
	if v == nil {
		return c, ErrNotFound
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode challenge: %w", err)
	}
	return c, nil
}

// PutChallenge stores a challenge under its ID. It becomes the live
// challenge of its user at its client and end-user IP.
func (tx *Tx) PutChallenge(c Challenge) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode challenge: %w", err)
	}
	if err := tx.tx.Bucket(bucketChallenges).Put([]byte(c.ID), v); err != nil {
		return err
	}
	return tx.tx.Bucket(bucketLive).Put(liveKey(c.User, c.Client, c.EndUserIP), []byte(c.ID))
}

// DeleteChallenge removes a challenge; removing a missing one is no error.
func (tx *Tx) DeleteChallenge(id string) error {
	b := tx.tx.Bucket(bucketChallenges)
	v := b.Get([]byte(id))
	if v == nil {
		return nil
	}
	var c Challenge
	if json.Unmarshal(v, &c) == nil {
		live := tx.tx.Bucket(bucketLive)
		k := liveKey(c.User, c.Client, c.EndUserIP)
		if string(live.Get(k)) == id {
			if err := live.Delete(k); err != nil {
				return err
			}
		}
	}
	return b.Delete([]byte(id))
}

// LiveChallenge returns the newest challenge of user at client for the
// end-user IP ip (invalid when unknown), or ErrNotFound. It may have
// expired; the caller judges that.
func (tx *Tx) LiveChallenge(user, client string, ip netip.Addr) (Challenge, error) {
	id := tx.tx.Bucket(bucketLive).Get(liveKey(user, client, ip))
	if id == nil {
		return Challenge{}, ErrNotFound
	}
	return tx.Challenge(string(id))
}

func liveKey(user, client string, ip netip.Addr) []byte {
	a := ""
	if ip.IsValid() {
		a = ip.Unmap().String()
	}
	return []byte(NormalizeName(user) + "\x00" + client + "\x00" + a)
}

// CountChallenges returns how many challenges are stored, live or not yet pruned.
func (tx *Tx) CountChallenges() int {
	return tx.tx.Bucket(bucketChallenges).Stats().KeyN
}

// Proven returns when user last proved a code from ip.
func (tx *Tx) Proven(user string, ip netip.Addr) (time.Time, bool) {
	return tx.ProvenFrom(user, ip.Unmap().String())
}

// ProvenFrom returns when user last proved a code from place: an IP
// address, or "machine:" and a machine name for gateways that send one.
func (tx *Tx) ProvenFrom(user, place string) (time.Time, bool) {
	v := tx.tx.Bucket(bucketProven).Get(placeKey(user, place))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// PutProven records that user proved a code from ip at the given time.
func (tx *Tx) PutProven(user string, ip netip.Addr, at time.Time) error {
	return tx.PutProvenFrom(user, ip.Unmap().String(), at)
}

// PutProvenFrom records that user proved a code from place (see ProvenFrom).
func (tx *Tx) PutProvenFrom(user, place string, at time.Time) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
	return tx.tx.Bucket(bucketProven).Put(placeKey(user, place), v[:])
}

// PutPreapproved lets user's logins through gateways that cannot prompt
// until the given time (a code proved on the sign-in page).
func (tx *Tx) PutPreapproved(user string, until time.Time) error {
	return tx.PutProvenFrom(user, preapprovedPlace, until)
}

// Preapproved returns until when user is pre-approved.
func (tx *Tx) Preapproved(user string) (time.Time, bool) {
	return tx.ProvenFrom(user, preapprovedPlace)
}

// preapprovedPlace is the proven "place" a pre-approval is kept under; no
// IP address or machine name looks like it.
const preapprovedPlace = "preapproved:"

func placeKey(user, place string) []byte {
	return []byte(NormalizeName(user) + "\x00" + place)
}

// Prune removes challenges that expired before now, proven pairs older
// than provenBefore and send records too old to count toward any limit,
// and returns how many records it removed.
func (db *DB) Prune(now, provenBefore time.Time) (int, error) {
	n := 0
	err := db.Update(func(tx *Tx) error {
		n = 0
		var expired []string
		err := tx.tx.Bucket(bucketChallenges).ForEach(func(k, v []byte) error {
			var ch Challenge
			if json.Unmarshal(v, &ch) != nil || ch.Expires.Before(now) {
				expired = append(expired, string(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range expired {
			if err := tx.DeleteChallenge(id); err != nil {
				return err
			}
		}
		n = len(expired)
		live := tx.tx.Bucket(bucketLive).Cursor()
		for k, v := live.First(); k != nil; {
			if tx.tx.Bucket(bucketChallenges).Get(v) == nil {
				if err := live.Delete(); err != nil {
					return err
				}
				k, v = live.Seek(k)
				continue
			}
			k, v = live.Next()
		}
		m, err := tx.pruneSends(now)
		if err != nil {
			return err
		}
		n += m
		p := tx.tx.Bucket(bucketProven).Cursor()
		for k, v := p.First(); k != nil; {
			if len(v) != 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(provenBefore) {
				if err := p.Delete(); err != nil {
					return err
				}
				n++
				k, v = p.Seek(k)
				continue
			}
			k, v = p.Next()
		}
		return nil
	})
	return n, err
}
