package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// maxDecoded is how many decoded users the store keeps: about the users
// of a busy morning, a few megabytes.
const maxDecoded = 8192

// decodedUsers keeps users as decoded from their records, with the bytes
// they were decoded from. Decoding a record is most of what reading a
// user costs, and the same users come back: the second round of every
// challenge, a gateway reconnecting. An entry is used only when the
// record read is byte for byte the one it was decoded from, so a user
// changed by anyone, in any transaction, is decoded anew.
type decodedUsers struct {
	mu sync.Mutex
	by map[string]decodedUser
}

type decodedUser struct {
	raw []byte
	u   User
}

// decodeUser returns the user in record v, stored under key.
func (db *DB) decodeUser(key string, v []byte) (User, error) {
	if db == nil {
		return unmarshalUser(key, v)
	}
	c := &db.decoded
	c.mu.Lock()
	d, ok := c.by[key]
	c.mu.Unlock()
	if ok && bytes.Equal(d.raw, v) {
		return cloneUser(d.u), nil
	}
	u, err := unmarshalUser(key, v)
	if err != nil {
		return u, err
	}
	d = decodedUser{raw: bytes.Clone(v), u: cloneUser(u)}
	c.mu.Lock()
	if c.by == nil {
		c.by = make(map[string]decodedUser)
	}
	if _, ok := c.by[key]; !ok && len(c.by) >= maxDecoded {
		for k := range c.by { // any one: Go's map order is as good as random
			delete(c.by, k)
			break
		}
	}
	c.by[key] = d
	c.mu.Unlock()
	return u, nil
}

func unmarshalUser(key string, v []byte) (User, error) {
	if u, ok := readUserJSON(v); ok {
		return u, nil
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return User{}, fmt.Errorf("decode user %q: %w", key, err)
	}
	return u, nil
}

// cloneUser returns a copy of u whose slices and TOTP structs are its
// own. The byte strings in them (sealed secrets, recovery code hashes)
// are shared: they are replaced, never changed in place.
func cloneUser(u User) User {
	u.HomeIPs = slices.Clone(u.HomeIPs)
	u.Failures = slices.Clone(u.Failures)
	u.Remembered = slices.Clone(u.Remembered)
	u.Recovery = slices.Clone(u.Recovery)
	for _, t := range []**TOTP{&u.TOTP, &u.PendingTOTP} {
		if *t != nil {
			c := **t
			*t = &c
		}
	}
	return u
}
