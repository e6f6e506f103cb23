package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The TOTP steps users have used, so that a code is accepted once.
//
// A step used is appended to the steps bucket, under a sequence number,
// instead of being written into the user's record: an append touches the
// last page of the bucket, where rewriting a record touches a page of its
// own, and that is what a login costs when many come at once. An entry is
// kept until no window of codes can reach its step again (the caller says
// when that is); then PruneSteps writes the newest step of the entries it
// removes into the user's record (TOTP.LastStep), which guards on its own
// from then on, also against a clock set back. The newest step of each
// user is also held in memory, read when the store is opened.

// usedSteps is the in-memory side: each user's newest step used.
type usedSteps struct {
	mu sync.Mutex
	by map[string]int64
}

// UsedStep returns the newest TOTP step user has used that is not yet in
// their record, or 0. With the etcd engine it is the step this node has
// seen last (see ReadUser).
func (db *DB) UsedStep(user string) int64 {
	user = NormalizeName(user)
	if db.etcd != nil {
		return decodeUsedStep(db.etcd.mirror.get(stepKey(user)).v)
	}
	db.steps.mu.Lock()
	defer db.steps.mu.Unlock()
	return db.steps.by[user]
}

// UseStep records within tx that user has used step, and that the record
// of it may go after until. It is known to the functions after it in the
// same commit at once, and to UsedStep and ReadUser once tx is committed.
func (tx *Tx) UseStep(user string, step int64, until time.Time) error {
	return tx.kv.useStep(NormalizeName(user), step, until.UnixNano())
}

// keepSteps makes the steps used in a committed transaction known.
func (db *DB) keepSteps(steps map[string]int64) {
	if len(steps) == 0 {
		return
	}
	db.steps.mu.Lock()
	defer db.steps.mu.Unlock()
	for user, step := range steps {
		if step > db.steps.by[user] {
			db.steps.by[user] = step
		}
	}
}

// An entry is the step (8 bytes), until in Unix nanoseconds (8 bytes) and
// the user's name.
func encodeStep(user string, step int64, until int64) []byte {
	v := make([]byte, 16, 16+len(user))
	binary.BigEndian.PutUint64(v, uint64(step))
	binary.BigEndian.PutUint64(v[8:], uint64(until))
	return append(v, user...)
}

func decodeStep(v []byte) (user string, step int64, until time.Time, ok bool) {
	if len(v) < 17 {
		return "", 0, time.Time{}, false
	}
	return string(v[16:]), int64(binary.BigEndian.Uint64(v)), time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))), true
}

// loadSteps fills the in-memory side from the bucket.
func (db *DB) loadSteps() error {
	by := map[string]int64{}
	err := db.View(func(tx *Tx) error {
		return tx.tx.Bucket(bucketSteps).ForEach(func(_, v []byte) error {
			if user, step, _, ok := decodeStep(v); ok && step > by[user] {
				by[user] = step
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read used steps: %w", err)
	}
	db.steps.by = by
	return nil
}

// MaxPrunedSteps is the most entries PruneSteps removes in one
// transaction, so that pruning does not hold up the writes of logins,
// which queue behind it. Each entry removed may have its user's record
// rewritten (TOTP.LastStep), and the records of different users are on
// different pages of the file, each written on its own: at 1,000 entries
// a transaction wrote about a thousand pages, and the logins that came
// meanwhile had their p99 doubled (the soak in the README).
const MaxPrunedSteps = 100

// maxLiveStepsSeen is how many entries whose time has not run out
// PruneSteps passes over, looking for ones that have, before it stops.
const maxLiveStepsSeen = 1000

// PruneSteps removes used TOTP steps whose time ran out before now, at most
// MaxPrunedSteps, and writes the newest removed of each user into their
// record (TOTP.LastStep) when it is newer than the record's. It returns how
// many it removed: call it again while that is MaxPrunedSteps.
//
// Entries are looked at from the oldest, and the looking stops after
// maxLiveStepsSeen entries whose time has not run out. Their times are in
// the order they were written give or take the few steps a phone's clock
// may be off, so an entry may stay a few minutes longer than it must,
// never shorter; one from a far future (a clock that was wrong) is passed
// over, not waited for.
func (db *DB) PruneSteps(now time.Time) (int, error) {
	if db.etcd != nil {
		return 0, nil // one key per user, its newest step: nothing to prune
	}
	n := 0
	var gone map[string]int64
	// The steps logged but not yet in the file go in first (op.file).
	err := db.wait(op{flush: true, file: true, fn: func(tx *Tx) error {
		n, gone = 0, map[string]int64{}
		live := 0
		c := tx.tx.Bucket(bucketSteps).Cursor()
		for k, v := c.First(); k != nil && n < MaxPrunedSteps; {
			user, step, until, ok := decodeStep(v)
			if ok && !until.Before(now) {
				if live++; live >= maxLiveStepsSeen {
					break
				}
				k, v = c.Next()
				continue
			}
			if ok {
				gone[user] = max(gone[user], step)
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
			k, v = c.Seek(bytes.Clone(k))
		}
		for user, step := range gone {
			u, err := tx.User(user)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if u.TOTP == nil || u.TOTP.LastStep >= step {
				continue
			}
			t := *u.TOTP
			t.LastStep = step
			u.TOTP = &t
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	}})
	if err == nil {
		db.forgetSteps(gone)
	}
	return n, err
}

// forgetSteps forgets in memory the steps PruneSteps removed, now that the
// records hold them: a user's step is forgotten unless a newer one has
// been used since.
func (db *DB) forgetSteps(gone map[string]int64) {
	s := &db.steps
	s.mu.Lock()
	defer s.mu.Unlock()
	for user, step := range gone {
		if u, ok := s.by[user]; ok && u <= step {
			delete(s.by, user)
		}
	}
}
