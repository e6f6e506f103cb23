package live

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// A gateway that sends each login to two nodes at once would have each
// node find no live challenge of the user, send a code and keep a
// challenge of its own: two codes, of which only the one of the State
// the gateway kept works. Sending is a lock per user in etcd
// (concurrency.Mutex, under a lease of the node's that etcd ends when
// the node stops renewing it): the node that takes it second waits while
// the first sends and keeps its challenge, then finds that challenge and
// asks for its code again, sending nothing.

// sendingTTL is how long a lock outlives a node that died holding it.
const sendingTTL = 10 // seconds

// sendingSession is the node's lease for its locks, made when first
// needed and again when etcd has let it expire.
type sendingSession struct {
	mu sync.Mutex
	s  *concurrency.Session
}

func (c *Cluster) session() (*concurrency.Session, error) {
	c.sending.mu.Lock()
	defer c.sending.mu.Unlock()
	if s := c.sending.s; s != nil {
		select {
		case <-s.Done(): // expired or closed: take a new one
		default:
			return s, nil
		}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	l, err := c.cli.Grant(ctx, sendingTTL)
	if err != nil {
		return nil, fmt.Errorf("lock for sending: %w", err)
	}
	// Kept alive until closed (Close), or until etcd has let it expire.
	s, err := concurrency.NewSession(c.cli, concurrency.WithLease(l.ID), concurrency.WithContext(context.Background()))
	if err != nil {
		return nil, fmt.Errorf("lock for sending: %w", err)
	}
	c.sending.s = s
	return s, nil
}

// Sending implements Challenges.
func (c *Cluster) Sending(ctx context.Context, user string) (func(), error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(s, c.prefix+"sending/"+hash(user))
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("lock for sending: %w", err)
	}
	return func() {
		uctx, cancel := c.ctx()
		defer cancel()
		m.Unlock(uctx) // failing, the lease ends it within sendingTTL
	}, nil
}

// closeSending ends the node's lease, and with it any lock it holds.
func (c *Cluster) closeSending() {
	c.sending.mu.Lock()
	defer c.sending.mu.Unlock()
	if c.sending.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.sending.s.Orphan() // stops renewing
		c.cli.Revoke(ctx, c.sending.s.Lease())
		c.sending.s = nil
	}
}
