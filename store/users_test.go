package store_test

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"  ALICE\t", "alice"},
		{"Jan.de.Vries", "jan.de.vries"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := store.NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUserRoundTrip(t *testing.T) {
	path := tempPath(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	in := store.User{
		Name:         " Alice ",
		Tenant:       "acme",
		TwoFactor:    "on",
		Method:       "totp",
		Phone:        "+31612345678",
		Email:        "alice@example.com",
		HomeIPs:      []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8::/64")},
		PasswordHash: "$2a$04$hash",
		TOTP:         &store.TOTP{Sealed: []byte{1, 2, 3}, LastStep: 42},
		Created:      created,
		Updated:      created.Add(time.Hour),
	}
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.PutUser(in) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	want := in
	want.Name = "alice"
	for _, name := range []string{"alice", "ALICE", " Alice"} {
		var got store.User
		mustView(t, db, func(tx *store.Tx) error {
			var err error
			got, err = tx.User(name)
			return err
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("User(%q): got %+v, want %+v", name, got, want)
		}
	}
}

func TestUserNotFound(t *testing.T) {
	db := open(t, tempPath(t))
	mustView(t, db, func(tx *store.Tx) error {
		if _, err := tx.User("nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
}

func TestPutUserEmptyName(t *testing.T) {
	db := open(t, tempPath(t))
	for _, name := range []string{"", "   "} {
		if err := db.Update(func(tx *store.Tx) error { return tx.PutUser(store.User{Name: name}) }); err == nil {
			t.Errorf("PutUser(%q): got nil error, want one", name)
		}
	}
	count := 0
	mustView(t, db, func(tx *store.Tx) error {
		return tx.Users(func(store.User) error { count++; return nil })
	})
	if count != 0 {
		t.Errorf("got %d users, want 0", count)
	}
}

func TestPutUserReplaces(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "bob", Tenant: "acme", Phone: "+31612345678"})
	})
	// A different spelling is the same user.
	mustUpdate(t, db, func(tx *store.Tx) error {
		return tx.PutUser(store.User{Name: "BOB", Tenant: "other"})
	})
	var names []string
	var got store.User
	mustView(t, db, func(tx *store.Tx) error {
		var err error
		got, err = tx.User("bob")
		if err != nil {
			return err
		}
		return tx.Users(func(u store.User) error { names = append(names, u.Name); return nil })
	})
	if got.Tenant != "other" || got.Phone != "" {
		t.Errorf("got tenant %q phone %q, want the second record (other, no phone)", got.Tenant, got.Phone)
	}
	if !reflect.DeepEqual(names, []string{"bob"}) {
		t.Errorf("got users %v, want [bob]", names)
	}
}

func TestUsersInNameOrder(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		for _, n := range []string{"Carol", "alice", "dave", "Bob"} {
			if err := tx.PutUser(store.User{Name: n}); err != nil {
				return err
			}
		}
		return nil
	})
	var names []string
	mustView(t, db, func(tx *store.Tx) error {
		return tx.Users(func(u store.User) error { names = append(names, u.Name); return nil })
	})
	if want := []string{"alice", "bob", "carol", "dave"}; !reflect.DeepEqual(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}

	stop := errors.New("stop")
	seen := 0
	err := db.View(func(tx *store.Tx) error {
		return tx.Users(func(store.User) error { seen++; return stop })
	})
	if !errors.Is(err, stop) || seen != 1 {
		t.Errorf("fn error: got (%v, %d calls), want (stop, 1 call)", err, seen)
	}
}

func TestDeleteUser(t *testing.T) {
	db := open(t, tempPath(t))
	at := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	x, y := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	mustUpdate(t, db, func(tx *store.Tx) error {
		for _, n := range []string{"alice", "alice2", "bob"} {
			if err := tx.PutUser(store.User{Name: n}); err != nil {
				return err
			}
			for _, ip := range []netip.Addr{x, y} {
				if err := tx.PutProven(n, ip, at); err != nil {
					return err
				}
			}
		}
		return nil
	})

	mustUpdate(t, db, func(tx *store.Tx) error { return tx.DeleteUser("ALICE") })

	mustView(t, db, func(tx *store.Tx) error {
		if _, err := tx.User("alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("User(alice) after delete: got %v, want ErrNotFound", err)
		}
		for _, ip := range []netip.Addr{x, y} {
			if _, ok := tx.Proven("alice", ip); ok {
				t.Errorf("alice from %s still proven after delete", ip)
			}
			// Users whose names share a prefix or not keep their records.
			for _, n := range []string{"alice2", "bob"} {
				if _, ok := tx.Proven(n, ip); !ok {
					t.Errorf("%s from %s: got not proven, want proven", n, ip)
				}
				if _, err := tx.User(n); err != nil {
					t.Errorf("User(%s): got %v, want the user", n, err)
				}
			}
		}
		return nil
	})

	err := db.Update(func(tx *store.Tx) error { return tx.DeleteUser("alice") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteUser: got %v, want ErrNotFound", err)
	}
}
