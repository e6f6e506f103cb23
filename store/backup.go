package store

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// backup writes the cluster's store, read from etcd at one revision, and
// this node's audit log to a new bbolt file at path (see DB.Backup).
func (e *etcdEngine) backup(path string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*e.timeout)
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return 0, fmt.Errorf("backup to %s: read etcd: %w", path, err)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	out, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	err = out.Update(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			bucket, key, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), e.prefix), "/")
			if !ok || tx.Bucket([]byte(bucket)) == nil || bucket == string(bucketAudit) {
				continue
			}
			if bucket == string(bucketSteps) {
				// A step kept until no window of codes can reach it, with
				// room to spare: the file's list of steps is pruned.
				step := decodeUsedStep(kv.Value)
				until := time.Unix((step+10)*30, 0).UnixNano()
				if err := appendNext(tx.Bucket(bucketSteps), encodeStep(key, step, until)); err != nil {
					return err
				}
				continue
			}
			if err := tx.Bucket([]byte(bucket)).Put([]byte(key), kv.Value); err != nil {
				return err
			}
		}
		audit := tx.Bucket(bucketAudit)
		return e.db.bolt.View(func(local *bolt.Tx) error {
			return local.Bucket(bucketAudit).ForEach(func(k, v []byte) error { return appendNext(audit, v) })
		})
	})
	var size int64
	if err == nil {
		err = out.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	}
	return finishBackup(tmp, path, out.Close(), err, size)
}
