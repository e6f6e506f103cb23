package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// User is one person who logs in through a gateway.
type User struct {
	// Name is the login name, stored in lower case.
	Name string `json:"name"`
	// Tenant names the organisation whose settings apply.
	Tenant string `json:"tenant"`
	// TwoFactor switches the second factor for this user: "on", "off", or
	// empty to follow the tenant's mode.
	TwoFactor string `json:"two_factor,omitempty"`
	// Method is the primary second factor: "totp", "sms", "email" or "voice"; empty
	// means none chosen.
	Method string `json:"method,omitempty"`
	// BackupMethod is used when the primary method cannot be delivered;
	// empty means none.
	BackupMethod string `json:"backup_method,omitempty"`
	// Phone is the mobile number in E.164 form; empty means none on file.
	Phone string `json:"phone,omitempty"`
	// Email is the e-mail address; empty means none on file.
	Email string `json:"email,omitempty"`
	// HomeIPs are the places this user may log in from without a code.
	HomeIPs []netip.Prefix `json:"home_ips,omitempty"`
	// PasswordHash is a bcrypt hash for clients whose first factor is
	// "local"; empty means the user has no local password.
	PasswordHash string `json:"password_hash,omitempty"`
	// TOTP is the authenticator-app enrolment in use; nil means none.
	TOTP *TOTP `json:"totp,omitempty"`
	// PendingTOTP is a secret being linked: it becomes TOTP once a code
	// from it is proved. nil means none.
	PendingTOTP *TOTP `json:"pending_totp,omitempty"`
	// Recovery holds the keyed hashes of the unused recovery codes.
	Recovery [][]byte `json:"recovery,omitempty"`
	// Failures are the times of recent wrong codes, for the lockout.
	Failures []time.Time `json:"failures,omitempty"`
	// LockedUntil is when a lockout ends; zero means not locked.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Remembered are IPs a proved code made trusted for a while.
	Remembered []RememberedIP `json:"remembered,omitempty"`
	// Reply are the user's own reply attributes ("Filter-Id=admins"),
	// which an Accept carries over the tenant's and the client's.
	Reply []string `json:"reply,omitempty"`
	// Invite is the open invitation to enrol on the web page; nil means
	// none (see invites.go).
	Invite *Invite `json:"invite,omitempty"`
	// Created and Updated are when the record was made and last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// TOTP is a user's authenticator-app secret and replay guard.
type TOTP struct {
	// Sealed is the base32 secret encrypted with the server's key.
	Sealed []byte `json:"sealed"`
	// LastStep is the last 30-second step accepted; a code from this step
	// or an earlier one is never accepted again.
	LastStep int64 `json:"last_step"`
	// Drift is how many steps the phone's clock was last found off by
	// (learned from two codes in a row); codes are accepted within a step
	// of it. Zero means none.
	Drift int `json:"drift,omitempty"`
	// Created is when the secret was made.
	Created time.Time `json:"created,omitzero"`
}

// RememberedIP is an address a user proved a code from, trusted until a time.
type RememberedIP struct {
	IP    netip.Addr `json:"ip"`
	Until time.Time  `json:"until"`
}

// NormalizeName is the key a login name is stored under: trimmed and lower case.
func NormalizeName(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// User returns the user called name (case-insensitive) or ErrNotFound.
func (tx *Tx) User(name string) (User, error) {
	key := NormalizeName(name)
	v := tx.kv.get(bucketUsers, []byte(key))
	if v == nil {
		return User{}, ErrNotFound
	}
	return tx.db.decodeUser(key, v)
}

// PutUser creates or replaces a user.
func (tx *Tx) PutUser(u User) error {
	u.Name = NormalizeName(u.Name)
	if u.Name == "" {
		return fmt.Errorf("put user: empty name")
	}
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user %s: %w", u.Name, err)
	}
	return tx.kv.put(bucketUsers, []byte(u.Name), v)
}

// DeleteUser removes a user and what the store remembers for them. It
// returns ErrNotFound when there is no such user.
func (tx *Tx) DeleteUser(name string) error {
	name = NormalizeName(name)
	if tx.kv.get(bucketUsers, []byte(name)) == nil {
		return ErrNotFound
	}
	if u, err := tx.User(name); err == nil && u.Invite != nil {
		if err := tx.DeleteInvite(u.Invite.Hash); err != nil {
			return err
		}
	}
	if err := tx.kv.del(bucketUsers, []byte(name)); err != nil {
		return err
	}
	return tx.kv.delPrefix(bucketProven, []byte(name+"\x00"))
}

// ForgetProven forgets every IP name proved a code from, so that no
// reconnect window lets them in without one.
func (tx *Tx) ForgetProven(name string) error {
	return tx.kv.delPrefix(bucketProven, []byte(NormalizeName(name)+"\x00"))
}

// Users calls fn for every user in name order.
func (tx *Tx) Users(fn func(User) error) error {
	return tx.kv.scan(bucketUsers, nil, func(k, v []byte) (bool, error) {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return false, fmt.Errorf("decode user %q: %w", k, err)
		}
		return true, fn(u)
	})
}
