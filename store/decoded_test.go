package store

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func readUser(t *testing.T, db *DB, name string) User {
	t.Helper()
	var u User
	err := db.View(func(tx *Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func putUser(t *testing.T, db *DB, u User) {
	t.Helper()
	if err := db.Update(func(tx *Tx) error { return tx.PutUser(u) }); err != nil {
		t.Fatal(err)
	}
}

// A user read twice is the same user; changed in the store it is read as
// changed, whoever changed it; what a caller does to the user it got does
// not reach the next caller.
func TestDecodedUsersFollowTheStore(t *testing.T) {
	db := openInternal(t, Options{})
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	in := User{Name: "alice", Tenant: "acme", Method: "totp",
		HomeIPs:  []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")},
		TOTP:     &TOTP{Sealed: []byte{1, 2, 3}, LastStep: 42},
		Recovery: [][]byte{{9}, {8}},
		Failures: []time.Time{at},
		Created:  at, Updated: at}
	putUser(t, db, in)

	if got := readUser(t, db, "alice"); !reflect.DeepEqual(got, in) {
		t.Fatalf("first read: got %+v, want %+v", got, in)
	}
	first := readUser(t, db, "alice")
	if !reflect.DeepEqual(first, in) {
		t.Fatalf("second read: got %+v, want %+v", first, in)
	}
	// The caller changes what it got, the way judging an answer does.
	first.TOTP.LastStep = 99
	first.HomeIPs[0] = netip.MustParsePrefix("198.51.100.1/32")
	first.Failures = append(first.Failures[:0], at.Add(time.Hour))
	first.Recovery[0] = nil
	if again := readUser(t, db, "ALICE"); !reflect.DeepEqual(again, in) {
		t.Fatalf("third read after the caller changed its copy: got %+v, want %+v", again, in)
	}

	changed := in
	changed.TOTP = &TOTP{Sealed: []byte{1, 2, 3}, LastStep: 43}
	changed.Phone = "+31612345678"
	putUser(t, db, changed)
	if got := readUser(t, db, "alice"); !reflect.DeepEqual(got, changed) {
		t.Fatalf("after a change: got %+v, want %+v", got, changed)
	}
	// An entry decoded from other bytes than the record's (a reader of an
	// older snapshot may leave one behind) is not used.
	stale := changed
	stale.Method = "sms"
	db.decoded.mu.Lock()
	d := db.decoded.by["alice"]
	db.decoded.by["alice"] = decodedUser{raw: append(d.raw[:len(d.raw):len(d.raw)], ' '), u: stale}
	db.decoded.mu.Unlock()
	if got := readUser(t, db, "alice"); !reflect.DeepEqual(got, changed) {
		t.Fatalf("with an entry from other bytes: got %+v, want %+v", got, changed)
	}
	putUser(t, db, in)
	if got := readUser(t, db, "alice"); !reflect.DeepEqual(got, in) {
		t.Fatalf("after the change back: got %+v, want %+v", got, in)
	}
}

func TestDecodedUsersAreBounded(t *testing.T) {
	db := openInternal(t, Options{})
	const n = maxDecoded + 100
	err := db.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutUser(User{Name: fmt.Sprintf("u%05d", i), Tenant: "acme"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if u := readUser(t, db, fmt.Sprintf("u%05d", i)); u.Name != fmt.Sprintf("u%05d", i) {
			t.Fatalf("user %d: got %q", i, u.Name)
		}
	}
	if got := len(db.decoded.by); got != maxDecoded {
		t.Errorf("decoded users kept: got %d, want %d", got, maxDecoded)
	}
}
