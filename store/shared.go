package store

import (
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Shared returns the etcd client of a store kept in etcd, and the prefix
// beside the store's own where a cluster keeps what it shares besides
// (the challenges and approvals waiting for an answer, the nodes'
// heartbeats): the store's prefix with "-live/" for "/", so that the
// store's watched copy does not follow every challenge. It returns nil
// for a store kept in bbolt.
func (db *DB) Shared() (*clientv3.Client, string) {
	if db.etcd == nil {
		return nil, ""
	}
	return db.etcd.cli, strings.TrimSuffix(db.etcd.prefix, "/") + "-live/"
}
