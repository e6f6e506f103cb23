package store

import (
	"encoding/binary"
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

// TestDamagedAuditStartFailsNoWrite: with a retention set, commits that
// append audit entries also remove the oldest (trimAudit). A damaged page
// at the audit log's start fails no write and drops no entry: trimming
// turns itself off, and PruneAudit still reports the damage.
func TestDamagedAuditStartFailsNoWrite(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	db := openInternal(t, Options{Now: func() time.Time { return now }})
	mustUpdateInternal(t, db, func(tx *Tx) error {
		for i := range 400 {
			if err := tx.AppendAudit(Entry{Time: now.Add(time.Duration(i) * time.Second), User: fmt.Sprintf("user%04d", i), Decision: "accept"}); err != nil {
				return err
			}
		}
		return nil
	})
	// The leaf of the oldest entries: the first child of the bucket's
	// root, a branch page (a 16-byte header, then elements of 16 bytes
	// whose last 8 are the child's page number, little-endian).
	var root uint64
	size := db.bolt.Info().PageSize
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketAudit).RootPage())
		if info, err := tx.Page(int(root)); err != nil || info.Type != "branch" {
			return fmt.Errorf("the audit bucket's root: %+v, %v; want a branch page", info, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	first := binary.LittleEndian.Uint64(raw[int(root)*size+24:])
	overwrite(t, db.Path(), int64(first)*int64(size), size)
	db.SetAuditKeep(time.Hour)
	now = now.Add(3 * time.Hour) // every entry is past the retention

	err = db.Update(func(tx *Tx) error {
		return errors.Join(tx.PutMeta("x", []byte("y")), tx.AppendAudit(Entry{Time: now, User: "admin", Decision: "admin"}))
	})
	if err != nil {
		t.Fatalf("an Update with an audit entry: got %v, want it written", err)
	}
	if err := db.Audit(Entry{Time: now, User: "alice", Decision: "accept"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := db.AuditDropped(); n != 0 {
		t.Errorf("got %d audit entries dropped, want none (%v)", n, db.AuditFailing())
	}
	var meta []byte
	if err := db.View(func(tx *Tx) error { meta = tx.Meta("x"); return nil }); err != nil || string(meta) != "y" {
		t.Errorf("the Update's write: got %q, %v", meta, err)
	}
	if _, err := db.PruneAudit(now); !errors.Is(err, ErrDamaged) {
		t.Errorf("PruneAudit: got %v, want ErrDamaged", err)
	}
}
