package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// mirror is this node's copy of the store's keys in etcd, kept by a
// watch: reads (every login) cost no round trip, and go on while etcd
// cannot be reached. It may lag behind etcd by the time a watch event
// takes; no write trusts it, since every write compares the revisions
// of the keys it read (see etcdKV), and a write that finds them changed
// refreshes them here.
//
// Keys are kept without the prefix: "users/alice".
type mirror struct {
	mu sync.RWMutex
	kv map[string]mirrored
	// gone are the keys of kv last stored absent, which advance may
	// forget: only these, not every key, are looked at then.
	gone map[string]struct{}
	rev  int64 // the revision the watch has delivered everything up to
	// known is the newest revision a commit of this node's was answered
	// at: everything up to it was written before that answer.
	known int64
	// seen is closed and replaced whenever rev moves.
	seen chan struct{}
}

// mirrored is one key as last known.
type mirrored struct {
	v   []byte // nil: absent
	mod int64  // its revision in etcd, as a transaction compares it; 0: absent
	at  int64  // the revision this was known at: older news is ignored
}

func newMirror() *mirror {
	return &mirror{kv: map[string]mirrored{}, gone: map[string]struct{}{}, seen: make(chan struct{})}
}

func (m *mirror) get(key string) mirrored {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.kv[key]
}

// set records key as known at revision at, unless something newer is
// known already. A nil v is a key that is gone.
func (m *mirror) set(key string, v []byte, mod, at int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(key, v, mod, at)
}

func (m *mirror) setLocked(key string, v []byte, mod, at int64) {
	if cur, ok := m.kv[key]; ok && cur.at >= at {
		return
	}
	if v == nil {
		mod = 0
	}
	m.putLocked(key, mirrored{v: v, mod: mod, at: at})
}

// putLocked stores e at key, noting an absent key in gone.
func (m *mirror) putLocked(key string, e mirrored) {
	m.kv[key] = e
	if e.v == nil {
		m.gone[key] = struct{}{}
	}
}

// delPrefix records that the keys under prefix were deleted at revision at.
func (m *mirror) delPrefix(prefix string, at int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.kv {
		if strings.HasPrefix(k, prefix) {
			m.setLocked(k, nil, 0, at)
		}
	}
}

// scan returns the keys under prefix that are present, in order.
func (m *mirror) scan(prefix string) []string {
	m.mu.RLock()
	var keys []string
	for k, e := range m.kv {
		if e.v != nil && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	slices.Sort(keys)
	return keys
}

// advance notes that the watch has delivered everything up to rev, and
// forgets the absent keys known before it: nothing older can come.
func (m *mirror) advance(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev <= m.rev {
		return
	}
	m.rev = rev
	for k := range m.gone {
		e, ok := m.kv[k]
		switch {
		case !ok || e.v != nil:
			delete(m.gone, k) // back, or forgotten already
		case e.at <= rev:
			delete(m.kv, k)
			delete(m.gone, k)
		}
	}
	close(m.seen)
	m.seen = make(chan struct{})
}

// written returns a revision up to which everything was written before
// now: the watch's, or this node's last commit's if newer.
func (m *mirror) written() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return max(m.rev, m.known)
}

// revision returns the revision the watch has delivered up to, and a
// channel closed when it moves.
func (m *mirror) revision() (int64, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev, m.seen
}

// load reads every key under the prefix and returns the revision read at.
func (e *etcdEngine) load(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	e.mirror.mu.Lock()
	present := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), e.prefix)
		present[k] = true
		e.mirror.setLocked(k, kv.Value, kv.ModRevision, rev)
	}
	for k := range e.mirror.kv {
		if !present[k] {
			e.mirror.setLocked(k, nil, 0, rev)
		}
	}
	e.mirror.mu.Unlock()
	e.mirror.advance(rev)
	return rev, nil
}

// watch keeps the mirror until ctx ends: it follows the prefix from rev
// on, and reads it all again when etcd has compacted what it missed.
func (e *etcdEngine) watch(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		if rev == 0 {
			var err error
			if rev, err = e.load(ctx); err != nil {
				e.health.note("read the store from etcd", err)
				rev = 0
				select {
				case <-ctx.Done():
					return
				case <-time.After(e.retry):
				}
				continue
			}
		}
		wctx, cancel := context.WithCancel(e.watchCtx(ctx))
		ch := e.cli.Watch(wctx, e.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		var failed error
		for wr := range ch {
			if err := wr.Err(); err != nil {
				failed = err
				if wr.CompactRevision != 0 {
					rev = 0 // what was missed is gone: read it all again
				}
				break
			}
			for _, ev := range wr.Events {
				k := strings.TrimPrefix(string(ev.Kv.Key), e.prefix)
				if ev.Type == mvccpb.DELETE {
					e.mirror.set(k, nil, 0, ev.Kv.ModRevision)
				} else {
					e.mirror.set(k, ev.Kv.Value, ev.Kv.ModRevision, ev.Kv.ModRevision)
				}
			}
			// Only events move rev: etcd before 3.4.24 and 3.5.8 may send a
			// progress notification ahead of events the watch still owes,
			// and a tombstone forgotten on its word could be brought back
			// by an older event that follows.
			if n := len(wr.Events); n > 0 {
				rev = max(rev, wr.Events[n-1].Kv.ModRevision)
			}
			e.mirror.advance(rev)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if failed == nil {
			failed = errors.New("watch closed")
		}
		e.health.note("watch etcd", failed)
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.retry):
		}
	}
}

// watchCtx is the context of the watch: one that ends when its etcd
// member loses the leader, so that a member cut off from the others is
// left for one that is not.
func (e *etcdEngine) watchCtx(ctx context.Context) context.Context {
	return clientv3.WithRequireLeader(ctx)
}

// Sync returns once this node's copy of the store holds everything
// written in etcd before the call: what another node has just written
// is then read here. With bbolt it returns at once.
//
// It reads the prefix again rather than asking the watch how far it is:
// etcd before 3.4.24 (Debian's 3.4.23 among them) answers a progress
// request at once with its newest revision, ahead of events it has not
// sent yet (etcd issue 15220), so that Sync returned before the other
// node's writes had arrived, and the watch, trusting that revision,
// could resume past events it never delivered.
func (db *DB) Sync(ctx context.Context) error {
	if db.etcd == nil {
		return nil
	}
	e := db.etcd
	// A mark written now comes through the watch after everything
	// written before it. (A progress notification would cost no write,
	// but etcd before 3.4.24 and 3.5.8 may send one ahead of events the
	// watch still owes; Debian's 3.4.23 does.)
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	lease, err := e.cli.Grant(rctx, 60)
	if err != nil {
		return fmt.Errorf("sync with etcd: %w", err)
	}
	mark := make([]byte, 8)
	rand.Read(mark)
	resp, err := e.cli.Put(rctx, e.prefix+"sync/"+hex.EncodeToString(mark), "", clientv3.WithLease(lease.ID))
	if err != nil {
		return fmt.Errorf("sync with etcd: %w", err)
	}
	want := resp.Header.Revision
	for {
		rev, moved := e.mirror.revision()
		if rev >= want {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("sync with etcd: %w", ctx.Err())
		}
	}
}
