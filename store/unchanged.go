package store

import (
	"bytes"
	"errors"
)

// The answer to a challenge reads a user, judges the code outside any
// transaction (opening a secret and comparing codes hold up no one), and
// writes what follows only if nothing it judged by has changed: the
// user's record, and the newest TOTP step they have used, which is kept
// apart from the record (see steps.go). ReadUser and CommitIf are that
// primitive, the same on both engines: bbolt compares within its one
// writer, etcd in the transaction's compares, so that a TOTP step is
// accepted once across every node.

// ErrConflict is returned by CommitIf when the user's record or their
// newest TOTP step has changed since ReadUser: judge again.
var ErrConflict = errors.New("the user's record changed meanwhile")

// Read is a user as ReadUser found them, and what CommitIf compares.
type Read struct {
	// User is the record, its TOTP.LastStep and PendingTOTP.LastStep
	// raised to the newest step the user has used, and to the fence
	// after a crash of the machine (fence.go).
	User User

	name    string
	stamp   []byte // bbolt: the record as read
	mod     int64  // etcd: the record's revision
	step    int64  // the newest step used, kept apart from the record
	stepMod int64  // etcd: the revision of that step's key
	farRaw  []byte // the TOTP steps told to be far (guards.go), as stored
	far     []int64
	farMod  int64 // etcd: the revision of their key
}

// StepUsedAfter reports whether the user's newest step used, as read, may
// have been written after m (in a cluster: its key was written since):
// by a login that came at the same moment, at another node.
func (r Read) StepUsedAfter(m Mark) bool { return m.after(r.stepMod) }

// ReadUser returns the user called name, or ErrNotFound, as CommitIf
// will compare them.
func (db *DB) ReadUser(name string) (Read, error) {
	key := NormalizeName(name)
	r := Read{name: key}
	var raw []byte
	if db.etcd != nil {
		u, s := db.etcd.mirror.get(userKey(key)), db.etcd.mirror.get(stepKey(key))
		raw, r.mod, r.step, r.stepMod = u.v, u.mod, decodeUsedStep(s.v), s.mod
		f := db.etcd.mirror.get(etcdKey(bucketSends, farKey(key)))
		r.farRaw, r.farMod = f.v, f.mod
	} else {
		err := db.View(func(tx *Tx) error {
			raw = bytes.Clone(tx.kv.get(bucketUsers, []byte(key)))
			r.step = tx.kv.usedStep(key)
			r.farRaw = bytes.Clone(tx.kv.get(bucketSends, farKey(key)))
			return nil
		})
		if err != nil {
			return r, err
		}
		r.stamp = raw
	}
	r.far = decodeFar(r.farRaw)
	if raw == nil {
		return r, ErrNotFound
	}
	u, err := db.decodeUser(key, raw)
	if err != nil {
		return r, err
	}
	last := max(r.step, db.fence) // the fence after a crash of the machine: fence.go
	for _, tot := range []**TOTP{&u.TOTP, &u.PendingTOTP} {
		if *tot != nil && last > (*tot).LastStep {
			t := **tot
			t.LastStep = last
			*tot = &t
		}
	}
	r.User = u
	return r, nil
}

// CommitIf runs write in a transaction if the user of r and their newest
// TOTP step (and the steps they were told were far) are still as r read them, and returns ErrConflict, having
// written nothing, if not. A nil write writes nothing and only checks.
// write may run more than once, like an Update function.
func (db *DB) CommitIf(r Read, write func(*Tx) error) error {
	if db.etcd != nil {
		return db.etcd.commitIf(r, write)
	}
	same := func(tx *Tx) bool {
		v := tx.kv.get(bucketUsers, []byte(r.name))
		return v != nil && bytes.Equal(v, r.stamp) && tx.kv.usedStep(r.name) == r.step &&
			bytes.Equal(tx.kv.get(bucketSends, farKey(r.name)), r.farRaw)
	}
	conflict := false
	var err error
	if write == nil {
		err = db.View(func(tx *Tx) error { conflict = !same(tx); return nil })
	} else {
		err = db.local(func(tx *Tx) error {
			if conflict = !same(tx); conflict {
				return nil
			}
			return write(tx)
		})
	}
	if err == nil && conflict {
		err = ErrConflict
	}
	return err
}
