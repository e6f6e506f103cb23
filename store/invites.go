package store

import (
	"bytes"
	"net/netip"
	"time"
)

// Invite is an invitation to enrol on otpgate's web page: a one-time link
// whose token is kept only as a keyed hash. The user's record holds it;
// the invites bucket maps the hash back to the user, so that a link finds
// its user without a scan.
type Invite struct {
	// Hash is the keyed hash of the link's token.
	Hash []byte `json:"hash"`
	// Created and Expires bound it.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Via is how it went out: "sms", "email" or "print".
	Via string `json:"via,omitempty"`
	// Failures counts wrong passwords typed on its page; enough of them
	// void it.
	Failures int `json:"failures,omitempty"`
}

// PutInvite files hash under user in the index of invitations. The user's
// record must hold the invitation too: that is what counts.
func (tx *Tx) PutInvite(hash []byte, user string) error {
	return tx.kv.put(bucketInvite, hash, []byte(NormalizeName(user)))
}

// InviteUser returns the user whose invitation hash is, or ErrNotFound.
// The caller checks that the user's record still holds it.
func (tx *Tx) InviteUser(hash []byte) (User, error) {
	name := tx.kv.get(bucketInvite, hash)
	if name == nil {
		return User{}, ErrNotFound
	}
	u, err := tx.User(string(name))
	if err != nil {
		return User{}, err
	}
	if u.Invite == nil || !bytes.Equal(u.Invite.Hash, hash) {
		return User{}, ErrNotFound
	}
	return u, nil
}

// DeleteInvite removes hash from the index of invitations.
func (tx *Tx) DeleteInvite(hash []byte) error {
	if len(hash) == 0 {
		return nil
	}
	return tx.kv.del(bucketInvite, hash)
}

// ForgetProvenIP forgets that user proved a code from ip, so that the
// reconnect window no longer lets them in from there without one.
func (tx *Tx) ForgetProvenIP(user string, ip netip.Addr) error {
	return tx.kv.del(bucketProven, placeKey(user, ip.Unmap().String()))
}
