package etcdbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leases hands out etcd leases that outlast a given time: one for every
// time that falls in the same bucket, so that keys which may go at about
// the same moment share a lease (granting one is a write to etcd, and its
// end deletes all its keys in one). It is safe for concurrent use.
type Leases struct {
	lease clientv3.Lease
	// Bucket is how finely times share a lease; Grace how long a lease
	// outlasts its bucket.
	Bucket, Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	by map[int64]clientv3.LeaseID // by the unix second their bucket ends
}

// NewLeases returns leases granted through lease (usually a
// *clientv3.Client), for buckets of 30 s kept 60 s past their end.
func NewLeases(lease clientv3.Lease) *Leases {
	return &Leases{lease: lease, Bucket: 30 * time.Second, Grace: time.Minute, by: map[int64]clientv3.LeaseID{}}
}

func (l *Leases) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// For returns a lease that lasts past until by at least Grace.
func (l *Leases) For(ctx context.Context, until time.Time) (clientv3.LeaseID, error) {
	now := l.now()
	if until.Before(now) {
		until = now
	}
	bucket := int64(max(l.Bucket/time.Second, 1))
	end := (until.Unix()/bucket + 1) * bucket
	l.mu.Lock()
	id, ok := l.by[end]
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	ttl := time.Unix(end, 0).Sub(now) + l.Grace
	g, err := l.lease.Grant(ctx, int64(ttl/time.Second)+1)
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for b := range l.by {
		if b < now.Unix() {
			delete(l.by, b)
		}
	}
	l.by[end] = g.ID
	return g.ID, nil
}

// Forget drops a lease etcd no longer knows (it outlived its TTL, or the
// etcd cluster was rebuilt).
func (l *Leases) Forget(id clientv3.LeaseID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for b, v := range l.by {
		if v == id {
			delete(l.by, b)
		}
	}
}

// With runs write with a lease that lasts past until, and once more with a
// new lease if etcd has forgotten the one it had.
func (l *Leases) With(ctx context.Context, until time.Time, write func(clientv3.LeaseID) (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
	for try := 0; ; try++ {
		id, err := l.For(ctx, until)
		if err != nil {
			return nil, err
		}
		resp, err := write(id)
		if try == 0 && errors.Is(err, rpctypes.ErrLeaseNotFound) {
			l.Forget(id)
			continue
		}
		return resp, err
	}
}
