package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltFile makes a bbolt file at a temp path with fn, the way an older or
// newer build might have left it, and returns the path.
func boltFile(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otpgate.db")
	editBolt(t, path, fn)
	return path
}

func editBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// readFormat is the format recorded in the file at path, or "".
func readFormat(t *testing.T, path string) string {
	t.Helper()
	var got string
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			got = string(m.Get([]byte(metaFormat)))
		}
		return nil
	})
	return got
}

func TestFormatUpgradesMatch(t *testing.T) {
	if len(upgrades) != Format-1 {
		t.Fatalf("got %d upgrade steps, want Format-1 = %d: each raise of Format needs the step from the one before", len(upgrades), Format-1)
	}
}

func TestFormatNewStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if got, want := readFormat(t, path), strconv.Itoa(Format); got != want {
		t.Fatalf("a new store records format %q, want %q", got, want)
	}
}

// A store of the first releases records no format: it is format 1, opens
// with nothing lost and records the format it was brought up to.
func TestFormatUnrecordedIsOne(t *testing.T) {
	alice, _ := json.Marshal(User{Name: "alice", Tenant: "acme", Method: "sms", Phone: "+31612345678"})
	path := boltFile(t, func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketProven, bucketAudit, bucketMeta, bucketSends, bucketSteps} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put([]byte("key_id"), []byte("k1")); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Put([]byte("alice"), alice)
	})
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a format 1 store: %v", err)
	}
	err = db.View(func(tx *Tx) error {
		u, err := tx.User("alice")
		if err != nil || u.Phone != "+31612345678" || u.Method != "sms" {
			t.Errorf("got user %+v, %v; want alice as written", u, err)
		}
		if got := string(tx.Meta("key_id")); got != "k1" {
			t.Errorf("got key_id %q, want k1", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if got, want := readFormat(t, path), strconv.Itoa(Format); got != want {
		t.Fatalf("after open the store records format %q, want %q", got, want)
	}
}

// A store from a newer build is refused, with the file, both formats and
// what to do in one line, and left exactly as it was: not even the
// buckets of older builds that Open removes are touched.
func TestFormatNewerRefused(t *testing.T) {
	newer := strconv.Itoa(Format + 1)
	path := boltFile(t, func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("live")); err != nil {
			return err
		}
		return meta.Put([]byte(metaFormat), []byte(newer))
	})
	db, err := Open(path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("a store of a newer format opened")
	}
	if !errors.Is(err, ErrNewerFormat) {
		t.Errorf("got %v, want ErrNewerFormat", err)
	}
	want := "open store " + path + ": made by a newer otpgate (format " + newer + "); this binary reads up to format " +
		strconv.Itoa(Format) + ": upgrade otpgate or restore a backup"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	if got := readFormat(t, path); got != newer {
		t.Errorf("the refused store now records format %q, want %q untouched", got, newer)
	}
	editBolt(t, path, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("live")) == nil {
			t.Error("the refused store was changed: bucket live removed")
		}
		if tx.Bucket(bucketUsers) != nil {
			t.Error("the refused store was changed: bucket users created")
		}
		return nil
	})
}

func TestFormatNotANumber(t *testing.T) {
	for _, v := range []string{"two", "0", "-1", ""} {
		path := boltFile(t, func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return meta.Put([]byte(metaFormat), []byte(v))
		})
		db, err := Open(path, Options{})
		if err == nil {
			db.Close()
			t.Errorf("format %q: opened, want refused", v)
			continue
		}
		if !strings.Contains(err.Error(), "meta format is") || !strings.Contains(err.Error(), path) {
			t.Errorf("format %q: got %v, want the file and the key named", v, err)
		}
	}
}
