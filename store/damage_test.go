package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// usersPage returns the offset and size of the users bucket's root page.
func usersPage(t *testing.T, db *DB) (int64, int) {
	t.Helper()
	var off int64
	var size int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		size = db.bolt.Info().PageSize
		off = int64(tx.Bucket(bucketUsers).RootPage()) * int64(size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if off == 0 {
		t.Fatal("the users bucket is inline: put more in it")
	}
	return off, size
}

// overwrite writes garbage over the page at off, through a file of its
// own: bbolt maps the file, so an open store sees it at once.
func overwrite(t *testing.T, path string, off int64, size int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", size/4))
	if _, err := f.WriteAt(garbage, off); err != nil {
		t.Fatal(err)
	}
}

func addUsers(t *testing.T, db *DB, n int) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutUser(User{Name: fmt.Sprintf("user%04d", i), Tenant: "acme", Phone: "+31612345678"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDamagedWhileOpen: reads and writes that meet a damaged page fail
// with ErrDamaged, and the store goes on serving what is not damaged.
func TestDamagedWhileOpen(t *testing.T) {
	db := openInternal(t, Options{})
	addUsers(t, db, 100)
	off, size := usersPage(t, db)
	overwrite(t, db.Path(), off, size)

	err := db.View(func(tx *Tx) error { return tx.Users(func(User) error { return nil }) })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), db.Path()) {
		t.Fatalf("reading the users: got %v, want ErrDamaged naming the file", err)
	}
	err = db.Update(func(tx *Tx) error { return tx.PutUser(User{Name: "user0050", Tenant: "acme"}) })
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("writing a user: got %v, want ErrDamaged", err)
	}
	// The commit loop lives on: other buckets are written and read.
	mustUpdateInternal(t, db, func(tx *Tx) error { return tx.PutMeta("x", []byte("y")) })
	if err := db.Audit(Entry{User: "a", Decision: "accept"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	if err := db.View(func(tx *Tx) (err error) { entries, err = tx.AuditLog(0, nil); return err }); err != nil || len(entries) != 1 {
		t.Fatalf("the audit log after the damage: got %d entries, %v; want 1", len(entries), err)
	}
	if !errors.Is(db.Check(), ErrDamaged) {
		t.Error("Check: got no ErrDamaged")
	}
}

// TestPanicInUpdateIsAnError: a function that panics fails alone, as an
// error; the functions committed with it are written.
func TestPanicInUpdateIsAnError(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)
	errs := make(chan error, 2)
	go func() { errs <- db.Update(func(*Tx) error { var m map[string]int; m["x"]++; return nil }) }()
	go func() { errs <- db.Update(func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) }) }()
	waitQueued(t, db, 2)
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	var failed, ok int
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, ErrDamaged) && strings.Contains(err.Error(), "panic") {
			failed++ // a bug, not damage: no advice to restore the store
		} else if err == nil {
			ok++
		} else {
			t.Errorf("got %v", err)
		}
	}
	if failed != 1 || ok != 1 {
		t.Fatalf("got %d failed and %d written, want 1 and 1", failed, ok)
	}
	var v []byte
	db.View(func(tx *Tx) error { v = tx.Meta("k"); return nil })
	if string(v) != "v" {
		t.Fatalf("the write beside the panic: got %q, want v", v)
	}
}

// TestOpenRefusesDamage: the walk at Open finds a damaged page that
// nothing at open would read otherwise, and a file cut short.
func TestOpenRefusesDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, db *DB) // with the store open
	}{
		{"users page", func(t *testing.T, db *DB) {
			off, size := usersPage(t, db)
			overwrite(t, db.Path(), off, size)
		}},
		{"cut short", func(t *testing.T, db *DB) {
			var size int64
			db.View(func(tx *Tx) error { size = tx.tx.Size(); return nil })
			if err := os.Truncate(db.Path(), size-4096); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otpgate.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			addUsers(t, db, 100)
			tc.damage(t, db)
			db.Close()
			_, err = Open(path, Options{Timeout: 50 * time.Millisecond})
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "otpgate backup") {
				t.Fatalf("Open: got %v, want ErrDamaged naming the file and the way to restore it", err)
			}
		})
	}
}

func mustUpdateInternal(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
