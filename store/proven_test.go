package store_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

var epoch = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

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

	// Enough records to span many pages, with runs of old ones next to
	// each other, so that deleting while walking is exercised.
	var wantProven []string
	removed := 0
	mustUpdate(t, db, func(tx *store.Tx) error {
		wantProven, removed = nil, 0 // it may run more than once
		for i := range 3000 {
			var at time.Time
			switch i % 5 {
			case 0, 1, 2:
				at = provenBefore.Add(-time.Duration(i+1) * time.Second) // old
			case 3:
				at = provenBefore
			default:
				at = now
			}
			user := fmt.Sprintf("u%05d", i)
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
		for i := range 3000 {
			user := fmt.Sprintf("u%05d", i)
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
			if err := tx.PutProven(fmt.Sprintf("u%03d", i), netip.MustParseAddr("192.0.2.1"), epoch.Add(-time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	n, err := db.Prune(epoch, epoch)
	if err != nil || n != 300 {
		t.Errorf("got (%d, %v), want (300, nil)", n, err)
	}
	mustView(t, db, func(tx *store.Tx) error {
		for i := range 300 {
			if _, ok := tx.Proven(fmt.Sprintf("u%03d", i), netip.MustParseAddr("192.0.2.1")); ok {
				t.Errorf("u%03d still proven", i)
			}
		}
		return nil
	})
}
