package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

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
	return db.etcd.cli, livePrefix(db.etcd.prefix)
}

// livePrefix is the prefix beside the store's prefix (see Shared).
func livePrefix(prefix string) string { return strings.TrimSuffix(prefix, "/") + "-live/" }

// Dial connects to the etcd cluster c names, for what needs etcd but not
// the store (otpgate cluster status), and returns the client and the
// prefix Shared would return. The client connects lazily: the first
// request says whether etcd answers.
func (c Etcd) Dial() (*clientv3.Client, string, error) {
	c = c.withDefaults()
	cli, err := c.dial(context.Background())
	if err != nil {
		return nil, "", err
	}
	return cli, livePrefix(c.Prefix), nil
}

// dial connects to c's endpoints; ctx ends the client (and its logging
// in, which clientv3.New does at once when c has a user).
func (c Etcd) dial(ctx context.Context) (*clientv3.Client, error) {
	c = c.withDefaults()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		TLS:         c.TLS,
		Username:    c.Username,
		Password:    c.Password,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}

// withDefaults fills in what the zero values of c's fields mean.
func (c Etcd) withDefaults() Etcd {
	if c.Prefix == "" {
		c.Prefix = "/otpgate/"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.Retry == 0 {
		c.Retry = time.Second
	}
	if c.WriteWait == 0 {
		c.WriteWait = 6 * time.Second
	}
	return c
}
