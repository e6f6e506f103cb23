package store_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store"
)

// tempPath is where a test's store lives.
func tempPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "otpgate.db")
}

// open opens the store at path and closes it when the test ends.
func open(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func mustUpdate(t *testing.T, db *store.DB, fn func(*store.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t *testing.T, db *store.DB, fn func(*store.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func TestOpenPath(t *testing.T) {
	path := tempPath(t)
	db := open(t, path)
	if db.Path() != path {
		t.Errorf("got Path %s, want %s", db.Path(), path)
	}
}

func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	first, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := store.Open(path, store.Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("Open of a locked file: got %v, want an error wrapping ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := store.Open(path, store.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: got %v, want nil", err)
	}
	third.Close()
}

func TestOpenNotAStore(t *testing.T) {
	// A directory cannot be a store; the error is not ErrLocked.
	_, err := store.Open(t.TempDir(), store.Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("Open of a directory: got nil error, want one")
	}
	if errors.Is(err, store.ErrLocked) {
		t.Errorf("got %v, want an error other than ErrLocked", err)
	}
}

func TestWritesAfterClose(t *testing.T) {
	db, err := store.Open(tempPath(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := db.Update(func(*store.Tx) error { ran = true; return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update after Close: got %v, want ErrClosed", err)
	}
	if ran {
		t.Error("Update after Close ran its function")
	}
	if err := db.Audit(store.Entry{User: "alice"}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Audit after Close: got %v, want ErrClosed", err)
	}
	if _, err := db.Prune(time.Now(), time.Now()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Prune after Close: got %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func TestMeta(t *testing.T) {
	path := tempPath(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *store.Tx) error {
		if got := tx.Meta("key_id"); got != nil {
			t.Errorf("missing key: got %q, want nil", got)
		}
		return tx.PutMeta("key_id", []byte("abc"))
	})
	var got []byte
	mustView(t, db, func(tx *store.Tx) error { got = tx.Meta("key_id"); return nil })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Meta's value outlives its transaction and the open file.
	if string(got) != "abc" {
		t.Errorf("got %q, want %q", got, "abc")
	}
	db = open(t, path)
	mustView(t, db, func(tx *store.Tx) error { got = tx.Meta("key_id"); return nil })
	if string(got) != "abc" {
		t.Errorf("after reopen: got %q, want %q", got, "abc")
	}
}

func TestUpdateConcurrentCounter(t *testing.T) {
	tests := []struct {
		name     string
		maxBatch int
		workers  int
	}{
		{"default batch", 0, 200},
		{"batch of 1", 1, 50},
		{"batch of 7", 7, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			db, err := store.Open(path, store.Options{MaxBatch: tt.maxBatch})
			if err != nil {
				t.Fatal(err)
			}
			start := make(chan struct{})
			errs := make(chan error, tt.workers)
			var wg sync.WaitGroup
			for range tt.workers {
				wg.Go(func() {
					<-start
					errs <- db.Update(func(tx *store.Tx) error {
						var n uint64
						if v := tx.Meta("counter"); len(v) == 8 {
							n = binary.BigEndian.Uint64(v)
						}
						return tx.PutMeta("counter", binary.BigEndian.AppendUint64(nil, n+1))
					})
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("Update: %v", err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			// Every Update returned after its write was on disk: a fresh
			// open sees all of them.
			db = open(t, path)
			var got uint64
			mustView(t, db, func(tx *store.Tx) error {
				got = binary.BigEndian.Uint64(tx.Meta("counter"))
				return nil
			})
			if got != uint64(tt.workers) {
				t.Errorf("got counter %d, want %d", got, tt.workers)
			}
		})
	}
}

func TestUpdateErrorDiscardsWrites(t *testing.T) {
	db := open(t, tempPath(t))
	boom := errors.New("boom")
	err := db.Update(func(tx *store.Tx) error {
		if err := tx.PutMeta("half", []byte("written")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want an error wrapping %v", err, boom)
	}
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.Meta("half"); got != nil {
			t.Errorf("got %q after a failed Update, want nothing written", got)
		}
		return nil
	})
	// The store still works.
	mustUpdate(t, db, func(tx *store.Tx) error { return tx.PutMeta("after", []byte("ok")) })
	mustView(t, db, func(tx *store.Tx) error {
		if got := tx.Meta("after"); string(got) != "ok" {
			t.Errorf("got %q, want %q", got, "ok")
		}
		return nil
	})
}

func TestUpdateErrorsAmongConcurrentUpdates(t *testing.T) {
	// Failing and succeeding functions arrive together; each caller gets
	// its own result and only the failing functions' writes are missing.
	db := open(t, tempPath(t))
	boom := errors.New("boom")
	const n = 100
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = db.Update(func(tx *store.Tx) error {
				if err := tx.PutMeta(key(i), []byte{1}); err != nil {
					return err
				}
				if i%3 == 0 {
					return boom
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	mustView(t, db, func(tx *store.Tx) error {
		for i := range n {
			fail := i%3 == 0
			if fail && !errors.Is(errs[i], boom) {
				t.Errorf("update %d: got %v, want boom", i, errs[i])
			}
			if !fail && errs[i] != nil {
				t.Errorf("update %d: got %v, want nil", i, errs[i])
			}
			if got := tx.Meta(key(i)) != nil; got == fail {
				t.Errorf("update %d: got written %v, want %v", i, got, !fail)
			}
		}
		return nil
	})
}

func key(i int) string { return fmt.Sprintf("k%03d", i) }

func TestSyncTimesCountEachWrite(t *testing.T) {
	db := open(t, tempPath(t))
	// The first step above the store's high step commits the file, and
	// raises it (fence.go); the steps at or below it go to the log.
	if err := db.Update(func(tx *store.Tx) error { return tx.UseStep("bob", 101, time.Now().Add(time.Hour)) }); err != nil {
		t.Fatal(err)
	}
	before := db.SyncTimes()
	// An answer's write: only the step its code used, to the log of steps.
	if err := db.Update(func(tx *store.Tx) error { return tx.UseStep("ann", 100, time.Now().Add(time.Hour)) }); err != nil {
		t.Fatal(err)
	}
	// Anything else commits the file.
	if err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	after := db.SyncTimes()
	for _, kind := range []string{store.SyncStepLog, store.SyncFile} {
		h := after[kind]
		if got := h.Count - before[kind].Count; got != 1 {
			t.Errorf("%s: %d writes counted, want 1", kind, got)
		}
		if h.Sum <= before[kind].Sum {
			t.Errorf("%s: the sum of times did not grow: %v", kind, h.Sum)
		}
		if len(h.Bounds) != len(h.Buckets) || h.Buckets[len(h.Buckets)-1] > h.Count {
			t.Fatalf("%s: %d bounds, %d buckets, last %d of %d", kind, len(h.Bounds), len(h.Buckets), h.Buckets[len(h.Buckets)-1], h.Count)
		}
		for i := 1; i < len(h.Buckets); i++ {
			if h.Buckets[i] < h.Buckets[i-1] || h.Bounds[i] <= h.Bounds[i-1] {
				t.Fatalf("%s: bucket %d (le %v: %d) below bucket %d (le %v: %d)", kind, i, h.Bounds[i], h.Buckets[i], i-1, h.Bounds[i-1], h.Buckets[i-1])
			}
		}
	}
}
