package store_test

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

func TestSendsSlidingWindow(t *testing.T) {
	path := tempPath(t)
	db := open(t, path)
	for _, m := range []int{0, 10, 20, 50, 59} {
		at := epoch.Add(time.Duration(m) * time.Minute)
		mustUpdate(t, db, func(tx *store.Tx) error { return tx.RecordSend("u:alice", at) })
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path) // counts survive a restart
	tests := []struct {
		since time.Time
		want  int
	}{
		{epoch.Add(-time.Nanosecond), 5},
		{epoch, 4},
		{epoch.Add(20 * time.Minute), 2},
		{epoch.Add(58 * time.Minute), 1},
		{epoch.Add(59 * time.Minute), 0},
	}
	for _, tt := range tests {
		mustView(t, db, func(tx *store.Tx) error {
			if got := tx.CountSends("u:alice", tt.since); got != tt.want {
				t.Errorf("CountSends since %s: got %d, want %d", tt.since.Sub(epoch), got, tt.want)
			}
			if got := tx.CountSends("u:bob", tt.since); got != 0 {
				t.Errorf("CountSends of another key: got %d, want 0", got)
			}
			return nil
		})
	}
}

func TestSendsForgetOld(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.RecordSend("d:+31612345678", epoch) })
	later := epoch.Add(store.SendWindow + time.Minute)
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.RecordSend("d:+31612345678", later) })
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.CountSends("d:+31612345678", time.Time{}); got != 1 {
			t.Errorf("CountSends after a send beyond the window: got %d, want 1", got)
		}
		return nil
	})
}

func TestDayCount(t *testing.T) {
	db := open(t, tempPath(t))
	day := time.Date(2024, 5, 1, 23, 59, 0, 0, time.UTC)
	for range 3 {
		mustUpdate(t, db, func(tx *store.Tx) error { return tx.AddDayCount("t:acme", day) })
	}
	next := day.Add(2 * time.Minute)
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.DayCount("t:acme", day); got != 3 {
			t.Errorf("DayCount: got %d, want 3", got)
		}
		if got := tx.DayCount("t:acme", next); got != 0 {
			t.Errorf("DayCount the next day: got %d, want 0", got)
		}
		return nil
	})
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.AddDayCount("t:acme", next) })
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.DayCount("t:acme", next); got != 1 {
			t.Errorf("DayCount after a new day's send: got %d, want 1", got)
		}
		return nil
	})
}

func TestPruneSends(t *testing.T) {
	db := open(t, tempPath(t))
	mustUpdate(t, db, func(tx *store.Tx) error {
		if err := tx.RecordSend("old", epoch); err != nil {
			return err
		}
		if err := tx.RecordSend("fresh", epoch.Add(store.SendWindow)); err != nil {
			return err
		}
		if err := tx.AddDayCount("old-day", epoch.Add(-48*time.Hour)); err != nil {
			return err
		}
		return tx.AddDayCount("today", epoch.Add(store.SendWindow))
	})
	now := epoch.Add(store.SendWindow + time.Hour)
	n, err := db.Prune(now, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Prune removed %d records, want 2", n)
	}
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.CountSends("fresh", time.Time{}); got != 1 {
			t.Errorf("fresh sends after prune: got %d, want 1", got)
		}
		if got := tx.DayCount("today", now); got != 1 {
			t.Errorf("today's count after prune: got %d, want 1", got)
		}
		return nil
	})
}
