package store

import (
	"slices"
	"sync/atomic"
	"time"
)

// How long the store's writes take, kept as histograms for the metrics:
// a frame of used steps is what a TOTP answer waits for (the step its
// code used is in the log before the Accept goes out), and a commit of
// the file is what the queue of writes waits for; a disk that grows slow
// shows here first.

// The kinds of write the store times.
const (
	// SyncStepLog is a frame of used TOTP steps written to the log beside
	// the file: one write(2), which does not wait for the disk
	// (steplog.go).
	SyncStepLog = "step_log"
	// SyncFile is the write of a commit of the file: its pages, then its
	// meta page, each followed by a sync (bbolt).
	SyncFile = "file"
)

// syncBounds are the upper bounds of the histograms' buckets: fine where
// a disk's syncs fall (tens to hundreds of microseconds), coarse above.
var syncBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 75 * time.Microsecond,
	100 * time.Microsecond, 125 * time.Microsecond, 150 * time.Microsecond,
	175 * time.Microsecond, 200 * time.Microsecond, 250 * time.Microsecond,
	300 * time.Microsecond, 400 * time.Microsecond, 500 * time.Microsecond,
	750 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond,
	2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second,
}

// SyncHistogram is how many writes of a kind took how long.
type SyncHistogram struct {
	Count uint64
	Sum   time.Duration
	// Buckets are cumulative: Buckets[i] counts the writes that took at
	// most Bounds[i].
	Buckets []uint64
	Bounds  []time.Duration
}

// syncTimes counts one kind of write. Only the leader of the commit queue
// adds to it; the metrics read it at any time.
type syncTimes struct {
	counts [len(syncBounds) + 1]atomic.Uint64 // per bucket, the last one for what is above every bound
	sum    atomic.Int64                       // nanoseconds
}

// observe counts a write that took d.
func (s *syncTimes) observe(d time.Duration) {
	i := 0
	for i < len(syncBounds) && d > syncBounds[i] {
		i++
	}
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
}

// histogram returns what s has counted. Read while writes are counted,
// Sum may be a write behind or ahead of the counts.
func (s *syncTimes) histogram() SyncHistogram {
	h := SyncHistogram{Sum: time.Duration(s.sum.Load()), Buckets: make([]uint64, len(syncBounds)), Bounds: slices.Clone(syncBounds[:])}
	for i := range s.counts {
		n := s.counts[i].Load()
		h.Count += n
		if i < len(syncBounds) {
			h.Buckets[i] = h.Count
		}
	}
	return h
}

// SyncTimes returns, by kind (SyncStepLog, SyncFile), how long the
// store's writes have taken since it was opened.
func (db *DB) SyncTimes() map[string]SyncHistogram {
	return map[string]SyncHistogram{
		SyncStepLog: db.syncs.stepLog.histogram(),
		SyncFile:    db.syncs.file.histogram(),
	}
}
