package store

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// benchStore opens a store with n TOTP users named user000000 on.
func benchStore(b *testing.B, n int) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *Tx) error {
		for i := range n {
			// A TOTP user as enrolment leaves one: a sealed secret (here
			// bytes of its size), the step last used, a home network.
			u := User{Name: benchUser(i), Tenant: "acme", Method: "totp",
				TOTP:    &TOTP{Sealed: make([]byte, 60), LastStep: 58_000_000},
				HomeIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return db
}

func benchUser(i int) string { return fmt.Sprintf("user%06d", i) }

// BenchmarkReadUser is what the decision reads of a user on every request.
// Its allocations are the figure to watch (-benchmem).
func BenchmarkReadUser(b *testing.B) {
	const n = 20000
	db := benchStore(b, n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.ReadUser(benchUser(i % n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReadUserAndUseStep is the store's part of a TOTP answer: the
// user read, then the step used written to the log of used steps (one
// write to the page cache; the first of each new step commits the file,
// fence.go).
func BenchmarkReadUserAndUseStep(b *testing.B) {
	const n = 20000
	db := benchStore(b, n)
	until := time.Now().Add(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		name := benchUser(i % n)
		r, err := db.ReadUser(name)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.CommitIf(r, func(tx *Tx) error { return tx.UseStep(name, int64(1_000_000+i), until) }); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
