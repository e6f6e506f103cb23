package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// kv is one transaction on the engine below Tx: named buckets of keys and
// values. Two engines implement it: a bbolt file (boltKV), and etcd, seen
// through this node's watched copy (etcdKV). Tx's methods are written
// once, against kv; what differs is how a write is made exact: bbolt
// writes in one process, one transaction at a time, while etcd commits
// only if every key read is unchanged (see etcdKV).
//
// A value returned by get or passed to scan's function is valid until
// the transaction ends and must not be changed.
type kv interface {
	get(bucket, key []byte) []byte
	put(bucket, key, value []byte) error
	del(bucket, key []byte) error
	delPrefix(bucket, prefix []byte) error
	// scan calls fn for the keys under prefix in key order, until fn
	// returns false or an error. fn must not write.
	scan(bucket, prefix []byte, fn func(k, v []byte) (bool, error)) error
	// usedStep returns the newest TOTP step user has used that the
	// engine keeps apart from their record, or 0.
	usedStep(user string) int64
	// useStep records that user has used step; the record of it may go
	// after until.
	useStep(user string, step int64, until int64) error
	// claim claims id for user until until, or returns ErrClaimed
	// (claims.go).
	claim(user, id string, until time.Time) error
	// claimed reports whether id is claimed for user.
	claimed(user, id string) bool
}

// boltKV is kv on a bbolt transaction.
type boltKV struct {
	tx *bolt.Tx
	db *DB
	// steps are the TOTP steps used in this transaction, newest per user:
	// known to the functions after in the same commit, and to the
	// store's memory (DB.steps) once the commit is made.
	steps map[string]int64
	// used are the entries of those steps, in the order used (encodeStep).
	used [][]byte
	// stepsOnly: a read-only transaction in which steps may be used, for
	// the log of used steps (DB.logSteps); wrote records that a function
	// tried to write anything else, which then needs the file, whether or
	// not it passed on the error bbolt gave it.
	stepsOnly, wrote bool
}

func (b *boltKV) get(bucket, key []byte) []byte { return b.tx.Bucket(bucket).Get(key) }

func (b *boltKV) put(bucket, key, value []byte) error {
	b.wrote = true
	return b.tx.Bucket(bucket).Put(key, value)
}

func (b *boltKV) del(bucket, key []byte) error {
	b.wrote = true
	return b.tx.Bucket(bucket).Delete(key)
}

func (b *boltKV) delPrefix(bucket, prefix []byte) error {
	b.wrote = true
	c := b.tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func (b *boltKV) scan(bucket, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	c := b.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if more, err := fn(k, v); err != nil || !more {
			return err
		}
	}
	return nil
}

func (b *boltKV) usedStep(user string) int64 {
	if s, ok := b.steps[user]; ok {
		return s
	}
	return b.db.UsedStep(user)
}

// useStep records the step, to be written with the transaction: in the
// log of used steps, or appended to the steps bucket (see write).
func (b *boltKV) useStep(user string, step int64, until int64) error {
	if !b.tx.Writable() && !b.stepsOnly {
		// Nothing would write it: refused, as a put would be.
		return berrors.ErrTxNotWritable
	}
	if b.steps == nil {
		b.steps = map[string]int64{}
	}
	b.steps[user] = max(b.steps[user], b.db.UsedStep(user), step)
	b.used = append(b.used, encodeStep(user, step, until))
	return nil
}
