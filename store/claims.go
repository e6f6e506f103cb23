package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// A Claim marks something used once across every node: a sealed State
// answered (see live/sealed.go). Tx.Claim writes it within a transaction,
// which then commits only if no transaction wrote it before, and fails
// with ErrClaimed otherwise; so a State answered at two nodes at the same
// moment is judged at both, and written, accepted or counted at one.
//
// With etcd a claim is kept with the user it was made for, in their key
// of the newest TOTP step used (format 2), so that an answer compares and
// writes one key for the State's claim and the step it uses; claims whose
// Until has passed go when the key is next written. With bbolt a claim
// is a guard record in the sends bucket, pruned with them after Until.
type Claim struct {
	// User is whose it is: the State's.
	User string
	// ID names what is used; empty: nothing to claim.
	ID string
	// Until is how long the claim must be kept: past it, whatever it
	// marks is refused without looking for the claim.
	Until time.Time
}

// ErrClaimed is the error of a transaction that claimed what had been
// claimed before.
var ErrClaimed = errors.New("already used")

// kindClaim is a claim's record in the sends bucket (bbolt): when it may
// go, in Unix nanoseconds (8 bytes).
const kindClaim = 'c'

// Claim claims c within tx (see Claim).
func (tx *Tx) Claim(c Claim) error {
	if c.ID == "" {
		return errors.New("claim: no ID")
	}
	return tx.kv.claim(NormalizeName(c.User), c.ID, c.Until)
}

// A Mark is how far this node's view of the store had come at a moment:
// in a cluster, an etcd revision up to which everything had been written
// (what its copy had reached, or its own last commit). A key whose
// revision is newer was written since, as far as this node can tell. On a
// single node it marks nothing: every write there is this node's own.
type Mark struct{ rev int64 }

// Mark returns where this node's view of the store is now.
func (db *DB) Mark() Mark {
	if db.etcd == nil {
		return Mark{}
	}
	return Mark{rev: db.etcd.mirror.written()}
}

// after reports whether a key written at revision mod was written after
// m, as far as m marks anything.
func (m Mark) after(mod int64) bool { return m.rev > 0 && mod > m.rev }

// Claimed reports whether c has been claimed, as this node knows now (in a
// cluster: as far as its copy of etcd has come), and if so whether the
// claim may have been made after m (in a cluster, the key that holds it
// was written since): a claim made while the answer that asks was on its
// way, by the copy of it a gateway sent to another node.
func (db *DB) Claimed(c Claim, m Mark) (claimed, after bool, err error) {
	if c.ID == "" {
		return false, false, errors.New("claimed: no ID")
	}
	user := NormalizeName(c.User)
	err = db.View(func(tx *Tx) error {
		claimed = tx.kv.claimed(user, c.ID)
		return nil
	})
	if claimed && db.etcd != nil {
		after = m.after(db.etcd.mirror.get(stepKey(user)).mod)
	}
	return claimed, after, err
}

func (b *boltKV) claimed(_, id string) bool {
	return b.get(bucketSends, sendsKey(kindClaim, id)) != nil
}

func (b *boltKV) claim(user, id string, until time.Time) error {
	if b.claimed(user, id) {
		return ErrClaimed
	}
	k := sendsKey(kindClaim, id)
	return b.put(bucketSends, k, binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
}
