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
	by map[string]usedStep
}

type usedStep struct {
	step  int64
	claim uint64 // who used it, for a function that runs again (see Tx.UseStep)
}

// UsedStep returns the newest TOTP step user has used that is not yet in
// their record, or 0. A step used under claim counts as the one before
// it: to a function that runs again (see Tx.UseStep) its own step is free
// and every earlier one used.
func (db *DB) UsedStep(user string, claim uint64) int64 {
	db.steps.mu.Lock()
	defer db.steps.mu.Unlock()
	u := db.steps.by[NormalizeName(user)]
	if claim != 0 && u.claim == claim && u.step > 0 {
		return u.step - 1
	}
	return u.step
}

// StepFree reports whether user may use step: no later step is known to
// be used, nor this one by anyone but claim.
func (tx *Tx) StepFree(user string, step int64, claim uint64) bool {
	s := &tx.db.steps
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.by[NormalizeName(user)]
	return !ok || u.step < step || u.step == step && claim != 0 && u.claim == claim
}

// UseStep records within tx that user has used step, and that the entry
// may go after until. The step is known to UsedStep and StepFree at
// once, before tx commits, so that the next function in the same commit
// sees it; claim identifies the caller, for whom the step stays free if
// its function runs again. A transaction that fails after UseStep leaves
// the step marked used in memory: a code refused, never one accepted
// twice.
func (tx *Tx) UseStep(user string, step int64, until time.Time, claim uint64) error {
	user = NormalizeName(user)
	s := &tx.db.steps
	s.mu.Lock()
	if u, ok := s.by[user]; !ok || u.step <= step {
		s.by[user] = usedStep{step: step, claim: claim}
	}
	s.mu.Unlock()
	return appendNext(tx.tx.Bucket(bucketSteps), encodeStep(user, step, until))
}

// An entry is the step (8 bytes), until in Unix nanoseconds (8 bytes) and
// the user's name.
func encodeStep(user string, step int64, until time.Time) []byte {
	v := make([]byte, 16, 16+len(user))
	binary.BigEndian.PutUint64(v, uint64(step))
	binary.BigEndian.PutUint64(v[8:], uint64(until.UnixNano()))
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
	by := map[string]usedStep{}
	err := db.View(func(tx *Tx) error {
		return tx.tx.Bucket(bucketSteps).ForEach(func(_, v []byte) error {
			if user, step, _, ok := decodeStep(v); ok && step > by[user].step {
				by[user] = usedStep{step: step}
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
// transaction, so that pruning does not hold up the writes of logins.
const MaxPrunedSteps = 1000

// PruneSteps removes used TOTP steps whose time ran out before now, at most
// MaxPrunedSteps, and writes the newest removed of each user into their
// record (TOTP.LastStep) when it is newer than the record's. It returns how
// many it removed: call it again while that is MaxPrunedSteps.
//
// Entries are looked at from the oldest, and the looking stops after
// MaxPrunedSteps entries whose time has not run out. Their times are in
// the order they were written give or take the few steps a phone's clock
// may be off, so an entry may stay a few minutes longer than it must,
// never shorter; one from a far future (a clock that was wrong) is passed
// over, not waited for.
func (db *DB) PruneSteps(now time.Time) (int, error) {
	n := 0
	var gone map[string]int64
	err := db.Update(func(tx *Tx) error {
		n, gone = 0, map[string]int64{}
		live := 0
		c := tx.tx.Bucket(bucketSteps).Cursor()
		for k, v := c.First(); k != nil && n < MaxPrunedSteps; {
			user, step, until, ok := decodeStep(v)
			if ok && !until.Before(now) {
				if live++; live >= MaxPrunedSteps {
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
	})
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
		if u, ok := s.by[user]; ok && u.step <= step {
			delete(s.by, user)
		}
	}
}
