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
	step      time.Duration // a frame of used steps written with O_DSYNC: the sync time the target at concurrency 1 allows
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

	// The store's sync time: a frame of used steps, about 100 bytes,
	// written with O_DSYNC into blocks written before, one after another,
	// as the store wrote them before its writes stopped waiting for the
	// disk (store/fence.go).
	frames, err := os.OpenFile(filepath.Join(dir, "sync-frames"), os.O_RDWR|os.O_CREATE|os.O_TRUNC|syscall.O_DSYNC, 0o600)
	if err != nil {
		db.Close()
		return st, err
	}
	defer os.Remove(frames.Name())
	defer frames.Close()
	frame := make([]byte, 100)
	if _, err := frames.WriteAt(make([]byte, syncSamples*len(frame)), 0); err != nil {
		db.Close()
		return st, err
	}
	times = times[:0]
	for i := range syncSamples {
		frame[0] = byte(i)
		t0 := time.Now()
		if _, err := frames.WriteAt(frame, int64(i*len(frame))); err != nil {
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
