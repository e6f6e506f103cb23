package store_test

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

var epoch = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

func TestChallengeRoundTrip(t *testing.T) {
	path := tempPath(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	full := store.Challenge{
		ID: "0123abcd", User: "alice", Client: "citrix", Method: "sms",
		CodeHash: []byte{9, 8, 7}, Salt: "0123abcd", Destination: "+31 6*****78",
		EndUserIP: netip.MustParseAddr("192.0.2.7"), Attempts: 2, Expires: epoch.Add(3 * time.Minute),
	}
	bare := store.Challenge{ID: "ffff", User: "bob", Client: "vpn", Method: "totp", Expires: epoch}
	v6 := store.Challenge{ID: "v6", User: "carol", Method: "totp", EndUserIP: netip.MustParseAddr("2001:db8::7"), Expires: epoch}
	mustUpdate(t, db, func(tx *store.Tx) error {
		for _, c := range []store.Challenge{full, bare, v6} {
			if err := tx.PutChallenge(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	for _, want := range []store.Challenge{full, bare, v6} {
		t.Run(want.ID, func(t *testing.T) {
			var got store.Challenge
			mustView(t, db, func(tx *store.Tx) error {
				var err error
				got, err = tx.Challenge(want.ID)
				return err
			})
			if !got.Expires.Equal(want.Expires) {
				t.Errorf("got Expires %v, want %v", got.Expires, want.Expires)
			}
			got.Expires, want.Expires = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	mustView(t, db, func(tx *store.Tx) error {
		if n := tx.CountChallenges(); n != 3 {
			t.Errorf("got %d challenges, want 3", n)
		}
		return nil
	})
}

func TestChallengeNotFoundAndDelete(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutChallenge(store.Challenge{ID: "a", User: "alice", Expires: epoch})
	})
	mustUpdate(t, db, func(tx *store.Tx) error {
		if err := tx.DeleteChallenge("a"); err != nil {
			return err
		}
		// Deleting what is not there is no error.
		return tx.DeleteChallenge("never")
	})
	mustView(t, db, func(tx *store.Tx) error {
		for _, id := range []string{"a", "never", ""} {
			if _, err := tx.Challenge(id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Challenge(%q): got %v, want ErrNotFound", id, err)
			}
		}
		if n := tx.CountChallenges(); n != 0 {
			t.Errorf("got %d challenges, want 0", n)
		}
		return nil
	})
}

func TestProven(t *testing.T) {
	db := open(t, tempPath(t))
	v4 := netip.MustParseAddr("192.0.2.1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	other := netip.MustParseAddr("192.0.2.2")
	at := epoch.Add(1234567 * time.Nanosecond)

	mustView(t, db, func(tx *store.Tx) error {
		if got, ok := tx.Proven("alice", v4); ok || !got.IsZero() {
			t.Errorf("before PutProven: got (%v, %v), want (zero, false)", got, ok)
		}
		return nil
	})
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.PutProven("Alice", mapped, at) })

	tests := []struct {
		user string
		ip   netip.Addr
		ok   bool
	}{
		{"alice", v4, true},
		{"ALICE ", v4, true},
		{"alice", mapped, true},
		{"alice", other, false},
		{"bob", v4, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.user, tt.ip), func(t *testing.T) {
			mustView(t, db, func(tx *store.Tx) error {
				got, ok := tx.Proven(tt.user, tt.ip)
				if ok != tt.ok {
					t.Fatalf("got ok %v, want %v", ok, tt.ok)
				}
				if ok && !got.Equal(at) {
					t.Errorf("got %v, want %v", got, at)
				}
				return nil
			})
		})
	}

	later := at.Add(time.Minute)
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.PutProven("alice", v4, later) })
	mustView(t, db, func(tx *store.Tx) error {
		if got, _ := tx.Proven("alice", mapped); !got.Equal(later) {
			t.Errorf("after a second PutProven: got %v, want %v", got, later)
		}
		return nil
	})
}

func TestPrune(t *testing.T) {
	db := open(t, tempPath(t))
	now := epoch
	provenBefore := now.Add(-10 * time.Minute)

	// Enough records to span many pages, with runs of expired ones next
	// to each other, so that deleting while walking is exercised.
	var wantChallenges, wantProven []string
	removed := 0
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range 1500 {
			var expires time.Time
			switch {
			case i%7 < 4:
				expires = now.Add(-time.Duration(i+1) * time.Second) // expired
			case i%7 == 4:
				expires = now // expires now: not yet before now
			default:
				expires = now.Add(time.Minute)
			}
			id := fmt.Sprintf("c%05d", i)
			if !expires.Before(now) {
				wantChallenges = append(wantChallenges, id)
			} else {
				removed++
			}
			err := tx.PutChallenge(store.Challenge{
				ID: id, User: "alice", Client: "citrix", Method: "sms",
				CodeHash: make([]byte, 32), Salt: id, Expires: expires,
			})
			if err != nil {
				return err
			}
		}
		for i := range 600 {
			var at time.Time
			switch i % 5 {
			case 0, 1, 2:
				at = provenBefore.Add(-time.Duration(i+1) * time.Second) // old
			case 3:
				at = provenBefore
			default:
				at = now
			}
			user := fmt.Sprintf("u%04d", i)
			if !at.Before(provenBefore) {
				wantProven = append(wantProven, user)
			} else {
				removed++
			}
			if err := tx.PutProven(user, netip.MustParseAddr("192.0.2.1"), at); err != nil {
				return err
			}
		}
		return nil
	})

	n, err := db.Prune(now, provenBefore)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if n != removed {
		t.Errorf("got %d removed, want %d", n, removed)
	}

	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.CountChallenges(); got != len(wantChallenges) {
			t.Errorf("got %d challenges left, want %d", got, len(wantChallenges))
		}
		for i := range 1500 {
			id := fmt.Sprintf("c%05d", i)
			_, err := tx.Challenge(id)
			if keep := slices.Contains(wantChallenges, id); keep != (err == nil) {
				t.Errorf("challenge %s: got present %v, want %v", id, err == nil, keep)
			}
		}
		for i := range 600 {
			user := fmt.Sprintf("u%04d", i)
			_, ok := tx.Proven(user, netip.MustParseAddr("192.0.2.1"))
			if keep := slices.Contains(wantProven, user); keep != ok {
				t.Errorf("proven %s: got present %v, want %v", user, ok, keep)
			}
		}
		return nil
	})

	// Nothing more to do the second time.
	n, err = db.Prune(now, provenBefore)
	if err != nil || n != 0 {
		t.Errorf("second Prune: got (%d, %v), want (0, nil)", n, err)
	}
}

func TestPruneEmpty(t *testing.T) {
	db := open(t, tempPath(t))
	n, err := db.Prune(epoch, epoch)
	if err != nil || n != 0 {
		t.Errorf("got (%d, %v), want (0, nil)", n, err)
	}
}

func TestPruneAllExpired(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		for i := range 300 {
			if err := tx.PutChallenge(store.Challenge{ID: fmt.Sprintf("c%03d", i), Expires: epoch.Add(-time.Second)}); err != nil {
				return err
			}
			if err := tx.PutProven(fmt.Sprintf("u%03d", i), netip.MustParseAddr("192.0.2.1"), epoch.Add(-time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	n, err := db.Prune(epoch, epoch)
	if err != nil || n != 600 {
		t.Errorf("got (%d, %v), want (600, nil)", n, err)
	}
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.CountChallenges(); got != 0 {
			t.Errorf("got %d challenges left, want 0", got)
		}
		for i := range 300 {
			if _, ok := tx.Proven(fmt.Sprintf("u%03d", i), netip.MustParseAddr("192.0.2.1")); ok {
				t.Errorf("u%03d still proven", i)
			}
		}
		return nil
	})
}
