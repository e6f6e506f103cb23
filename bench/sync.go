package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/store"
)

// syncTimes are what making a write durable costs on the disk the store
// is on, medians of syncSamples.
type syncTimes struct {
	fdatasync time.Duration // a 4 kB write and fdatasync(2) of it
	commit    time.Duration // a store commit of one small value in the file (bbolt)
	step      time.Duration // a TOTP step used made durable: what a flow's answer waits for
}

const syncSamples = 200

// measureSync times them in dir, in files of their own.
func measureSync(dir string) (syncTimes, error) {
	var st syncTimes
	f, err := os.OpenFile(filepath.Join(dir, "sync-test"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return st, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	if _, err := f.WriteAt(make([]byte, syncSamples*len(page)), 0); err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, err
	}
	var times []time.Duration
	for i := range syncSamples {
		t0 := time.Now()
		if _, err := f.WriteAt(page, int64(i*len(page))); err != nil {
			return st, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return st, fmt.Errorf("fdatasync: %w", err)
		}
		times = append(times, time.Since(t0))
	}
	st.fdatasync = medianOf(times)

	path := filepath.Join(dir, "sync-test.db")
	defer os.Remove(path)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return st, err
	}
	times = times[:0]
	for i := range syncSamples {
		t0 := time.Now()
		err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("bench", []byte(strconv.Itoa(i))) })
		if err != nil {
			db.Close()
			return st, err
		}
		times = append(times, time.Since(t0))
	}
	st.commit = medianOf(times)

	// What an answer's commit writes: the step its code used, and nothing
	// else (the store's log of used steps).
	times = times[:0]
	for i := range syncSamples {
		t0 := time.Now()
		err := db.Update(func(tx *store.Tx) error { return tx.UseStep("bench", int64(i+1), time.Now().Add(time.Hour)) })
		if err != nil {
			db.Close()
			return st, err
		}
		times = append(times, time.Since(t0))
	}
	st.step = medianOf(times)
	return st, db.Close()
}

// medianOf is the median of ds, which it sorts.
func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
