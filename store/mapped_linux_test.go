package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssFile is this process's resident mapped-file memory (RssFile).
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestStorePagesLeaveRSS(t *testing.T) {
	// The store file, read through bbolt's mapping, does not stay in the
	// process's resident set: not after Open walks it, and not after the
	// minute's Prune when logins have read it since.
	path := filepath.Join(t.TempDir(), "otpgate.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 900)
	for batch := range 40 {
		err := db.Update(func(tx *Tx) error {
			for i := range 1000 {
				u := User{Name: fmt.Sprintf("user%06d", batch*1000+i), Tenant: "acme", Email: pad + "@example.com"}
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const want = 20 << 20 // of the file's 40 MB or so, at least this much must go
	if st.Size() < 2*want {
		t.Fatalf("store of %d bytes: too small for the test", st.Size())
	}

	before := rssFile(t)
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if grew := rssFile(t) - before; grew > st.Size()-want {
		t.Errorf("resident file memory after Open: grew by %d bytes, want at most %d (the file is %d)", grew, st.Size()-want, st.Size())
	}

	err = db.View(func(tx *Tx) error { return tx.Users(func(User) error { return nil }) })
	if err != nil {
		t.Fatal(err)
	}
	read := rssFile(t)
	if _, err := db.Prune(time.Now(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if dropped := read - rssFile(t); dropped < want {
		t.Errorf("resident file memory after Prune: dropped %d bytes, want at least %d", dropped, want)
	}
	// And the pages read again are the same.
	n := 0
	err = db.View(func(tx *Tx) error { return tx.Users(func(u User) error { n++; return nil }) })
	if err != nil || n != 40000 {
		t.Errorf("users read after: got %d (%v), want 40000", n, err)
	}
}
