package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotEmpty is returned by CopyToEtcd when the cluster's prefix holds
// keys already and the copy was not forced.
var ErrNotEmpty = errors.New("holds a store already")

// Copied counts what a copy moved.
type Copied struct {
	Users, Keys int
}

// copied are the buckets a copy moves as they are: all but the audit log,
// which stays each node's own, and the used steps, kept differently by
// the two engines.
var copied = [][]byte{bucketUsers, bucketProven, bucketMeta, bucketSends, bucketInvite}

// CopyToEtcd copies the store in db, a file, into the cluster in dst (a
// store opened on etcd): users with their TOTP secrets and used steps,
// proven IPs, send counts, recovery codes, invitations, pre-approvals and
// the store's own settings (its format, the key's id), everything but the
// audit log, which stays in the file. It refuses when the cluster's
// prefix holds a store already (ErrNotEmpty), unless force, which
// deletes what is there first. The keys are written in transactions of
// at most etcd's limit, one after another: no node may serve from the
// cluster while it runs.
func (db *DB) CopyToEtcd(dst *DB, force bool) (Copied, error) {
	var n Copied
	if db.etcd != nil || dst.etcd == nil {
		return n, errors.New("copy to etcd: from a file into etcd only")
	}
	e := dst.etcd
	var puts []clientv3.Op
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range copied {
			err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				puts = append(puts, clientv3.OpPut(e.prefix+etcdKey(b, k), string(v)))
				return nil
			})
			if err != nil {
				return err
			}
		}
		n.Users = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("copy to etcd: read %s: %w", db.path, err)
	}
	db.steps.mu.Lock()
	for user, step := range db.steps.by {
		puts = append(puts, clientv3.OpPut(e.prefix+stepKey(user), string(encodeUsedStep(step))))
	}
	db.steps.mu.Unlock()
	n.Keys = len(puts)

	ctx, cancel := context.WithTimeout(context.Background(), 4*e.timeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return n, fmt.Errorf("copy to %s: %w", e.where(), err)
	}
	if resp.Count > 0 && !e.onlyFormat(ctx, resp.Count) {
		if !force {
			return n, fmt.Errorf("copy to %s: %w (%d keys)", e.where(), ErrNotEmpty, resp.Count)
		}
		if _, err := e.cli.Delete(ctx, e.prefix, clientv3.WithPrefix()); err != nil {
			return n, fmt.Errorf("copy to %s: delete what was there: %w", e.where(), err)
		}
	}
	for len(puts) > 0 {
		chunk := puts[:min(len(puts), maxEtcdOps)]
		puts = puts[len(chunk):]
		cctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		_, err := e.cli.Txn(cctx).Then(chunk...).Commit()
		cancel()
		if err != nil {
			return n, fmt.Errorf("copy to %s: %w", e.where(), err)
		}
	}
	return n, nil
}

// Stored returns how many keys the store holds but its audit log: with
// etcd, the keys under its prefix, read from etcd itself.
func (db *DB) Stored() (int, error) {
	if db.etcd != nil {
		e := db.etcd
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		defer cancel()
		resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, fmt.Errorf("count the keys in %s: %w", e.where(), err)
		}
		return int(resp.Count), nil
	}
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range append(copied, bucketSteps) {
			if bytes.Equal(b, bucketMeta) {
				n += tx.Bucket(b).Stats().KeyN - 1 // its format, in every file
				continue
			}
			n += tx.Bucket(b).Stats().KeyN
		}
		return nil
	})
	return n, err
}

// onlyFormat reports whether the count keys under the prefix are just the
// format a node records when it opens an empty store: nothing to replace.
func (e *etcdEngine) onlyFormat(ctx context.Context, count int64) bool {
	if count != 1 {
		return false
	}
	resp, err := e.cli.Get(ctx, e.prefix+etcdKey(bucketMeta, []byte(metaFormat)), clientv3.WithCountOnly())
	return err == nil && resp.Count == 1
}
