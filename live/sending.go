package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	mu     sync.Mutex
	s      *concurrency.Session
	closed bool // by Close: no lease is taken any more
}

func (c *Cluster) session() (*concurrency.Session, error) {
	c.sending.mu.Lock()
	defer c.sending.mu.Unlock()
	if c.sending.closed {
		return nil, errors.New("lock for sending: closed")
	}
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

// Sending implements Challenges. Each call to etcd is bounded by
// Timeout (an error, as for any challenge); only waiting while another
// node holds the lock takes as long as ctx lasts (ctx's error).
func (c *Cluster) Sending(ctx context.Context, user string) (func(), error) {
	if c.Hopeless != nil {
		if err := c.Hopeless(); err != nil {
			return nil, fmt.Errorf("lock for sending: %w", err)
		}
	}
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	pfx := c.prefix + "sending/" + hash(user)
	m := concurrency.NewMutex(s, pfx)
	for {
		err = c.tryLock(ctx, m)
		if !errors.Is(err, concurrency.ErrLocked) {
			break
		}
		if err = c.freed(ctx, pfx+"/"); err != nil {
			break
		}
	}
	if err != nil {
		// A key of ours may be left behind, unseen (a write that took
		// effect, a clean-up that did not): under a lease kept alive it
		// would hold the lock for as long as this node lives.
		c.dropSession(s)
		return nil, fmt.Errorf("lock for sending: %w", err)
	}
	return func() {
		uctx, cancel := c.ctx()
		defer cancel()
		if m.Unlock(uctx) != nil {
			c.dropSession(s) // the lease ends it within sendingTTL
		}
	}, nil
}

// tryLock takes m if nobody holds it (concurrency.ErrLocked if another
// does), within Timeout and ctx.
func (c *Cluster) tryLock(ctx context.Context, m *concurrency.Mutex) error {
	d := c.Timeout
	if d <= 0 {
		d = 2 * time.Second
	}
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return m.TryLock(tctx)
}

// freed waits until a key under pfx (a holder or waiter of the lock) is
// deleted, or none is left, or ctx ends.
func (c *Cluster) freed(ctx context.Context, pfx string) error {
	gctx, cancel := c.ctx()
	resp, err := c.cli.Get(gctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	switch {
	case err != nil:
		return err
	case resp.Count == 0:
		return nil
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	w := c.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterPut())
	for wr := range w {
		if err := wr.Err(); err != nil {
			return err
		}
		if len(wr.Events) > 0 {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch of the lock ended")
}

// dropSession stops renewing s, so that etcd ends its lease, and every
// key under it, within sendingTTL; the next lock takes a new one.
func (c *Cluster) dropSession(s *concurrency.Session) {
	c.sending.mu.Lock()
	defer c.sending.mu.Unlock()
	s.Orphan()
	if c.sending.s == s {
		c.sending.s = nil
	}
}

// closeSending ends the node's lease, and with it any lock it holds.
func (c *Cluster) closeSending() {
	c.sending.mu.Lock()
	defer c.sending.mu.Unlock()
	c.sending.closed = true
	if c.sending.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.sending.s.Orphan() // stops renewing
		c.cli.Revoke(ctx, c.sending.s.Lease())
		c.sending.s = nil
	}
}
