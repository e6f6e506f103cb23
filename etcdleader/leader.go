// Package etcdleader sends etcd transactions straight to the cluster's
// leader. A write sent to another member is passed on to the leader by
// that member (one more hop, one more decoding, one more wait to be
// scheduled on a busy machine); the etcd client spreads its requests over
// every endpoint it is given, so two writes in three took that detour. On
// three members sharing two cores with otpgate, sending otpgate's batches
// to the leader alone raised TOTP flows by about a tenth at 64 logins at
// once and by a third at 16.
//
// Which member leads is asked of each configured endpoint (etcd's Status
// call names the member answering, its cluster and the leader it
// follows; a member is taken for the leader only when more than half of
// the endpoints follow it in the same cluster) every refresh and
// whenever a write through the leader's connection fails for want of an
// answer; the endpoint used is the configured one, so nothing
// but the admin's list is ever dialled. While no leader is known, or its
// connection fails, transactions go through the client for every
// endpoint, as they would without this package: routing never stops a
// write that could be made.
package etcdleader

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// KV is a clientv3.KV whose transactions go to the leader; its other
// requests go through the client for every endpoint. It is safe for
// concurrent use.
type KV struct {
	clientv3.KV // every endpoint
	all         *clientv3.Client
	endpoints   []string
	dial        func(ctx context.Context, endpoint string) (*clientv3.Client, error)
	ask         time.Duration // how long a Status call may take

	mu      sync.Mutex
	one     map[string]*clientv3.Client // a client per endpoint, dialled when first needed
	leader  *clientv3.Client            // the one whose member leads, or nil
	address string                      // its endpoint

	poke chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// New routes the transactions of all (a client for every endpoint in
// endpoints) to the leader, found every refresh. dial connects to one
// endpoint with all's settings (TLS, user); ctx ends at Close, and should
// end the dial (clientv3.Config.Context: clientv3.New logs in at once, and
// waits up to its dial timeout for a member that is down).
func New(all *clientv3.Client, endpoints []string, dial func(ctx context.Context, endpoint string) (*clientv3.Client, error), refresh time.Duration) *KV {
	var eps []string
	for _, ep := range endpoints {
		if !slices.Contains(eps, ep) {
			eps = append(eps, ep) // one answer per endpoint
		}
	}
	endpoints = eps
	ctx, stop := context.WithCancel(context.Background())
	k := &KV{
		KV: all, all: all, endpoints: endpoints, dial: dial, ask: time.Second,
		one:  map[string]*clientv3.Client{},
		poke: make(chan struct{}, 1), stop: stop, done: make(chan struct{}),
	}
	go k.run(ctx, refresh)
	return k
}

// Close stops looking for the leader and closes the connections to
// single endpoints; all stays open.
func (k *KV) Close() {
	k.stop()
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.one {
		c.Close()
	}
	k.one, k.leader = nil, nil
}

// Leader returns the endpoint transactions go to, or "" while they go to
// every endpoint.
func (k *KV) Leader() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.leader == nil {
		return ""
	}
	return k.address
}

// Txn starts a transaction through the leader's connection when one is
// known.
func (k *KV) Txn(ctx context.Context) clientv3.Txn {
	k.mu.Lock()
	via := k.leader
	k.mu.Unlock()
	if via == nil {
		return k.all.Txn(ctx)
	}
	return &txn{Txn: via.Txn(ctx), k: k, via: via}
}

// txn notices when the leader's connection fails it.
type txn struct {
	clientv3.Txn
	k   *KV
	via *clientv3.Client
}

func (t *txn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *txn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *txn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *txn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	if unanswered(err) {
		t.k.failed(t.via)
	}
	return resp, err
}

// unanswered reports whether err says the member did not answer (down,
// unreachable, too slow), rather than that it refused the request.
func unanswered(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// failed stops routing through via (if it is still the leader's
// connection) until the leader is found again, at once.
func (k *KV) failed(via *clientv3.Client) {
	k.mu.Lock()
	if k.leader == via {
		k.leader = nil
	}
	k.mu.Unlock()
	select {
	case k.poke <- struct{}{}:
	default:
	}
}

func (k *KV) run(ctx context.Context, refresh time.Duration) {
	defer close(k.done)
	for {
		wait := refresh
		if !k.find(ctx) {
			// An election under way, or members down: look again soon.
			wait = min(refresh, searchAgain)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-k.poke:
			t.Stop()
		}
	}
}

// searchAgain is how soon a search that found no leader is made again.
const searchAgain = time.Second

// find asks every endpoint at once which member it is, which cluster it
// belongs to and which member it follows, and routes to the endpoint of
// the member that leads, if more than half of the endpoints follow it in
// the same cluster: an endpoint that only says so itself is a member
// whose Raft loop is stuck (it answers Status as the leader it was while
// the others have elected another) or one of another cluster, and
// routing to it would stop every write or send it to the wrong cluster.
// It reports whether it found one.
func (k *KV) find(ctx context.Context) bool {
	type answer struct {
		c  *clientv3.Client
		st *pb.StatusResponse
	}
	answers := make([]answer, len(k.endpoints))
	var wg sync.WaitGroup
	for i, ep := range k.endpoints {
		wg.Go(func() {
			c, err := k.client(ctx, ep)
			if err != nil {
				return
			}
			actx, cancel := context.WithTimeout(ctx, k.ask)
			// Through c's own connection (clientv3's Status dials anew).
			st, err := pb.NewMaintenanceClient(c.ActiveConnection()).Status(actx, &pb.StatusRequest{})
			cancel()
			if err == nil && st.Header != nil && st.Leader != 0 {
				answers[i] = answer{c, st}
			}
		})
	}
	wg.Wait()
	type followed struct{ cluster, leader uint64 }
	votes := map[followed]int{}
	for _, a := range answers {
		if a.st != nil {
			votes[followed{a.st.Header.ClusterId, a.st.Leader}]++
		}
	}
	for i, a := range answers {
		if a.st == nil || a.st.Header.MemberId != a.st.Leader ||
			2*votes[followed{a.st.Header.ClusterId, a.st.Leader}] <= len(k.endpoints) {
			continue
		}
		k.mu.Lock()
		k.leader, k.address = a.c, k.endpoints[i]
		k.mu.Unlock()
		return true
	}
	k.mu.Lock()
	k.leader = nil
	k.mu.Unlock()
	return false
}

// client returns the client for endpoint ep alone, dialling it the first
// time.
func (k *KV) client(ctx context.Context, ep string) (*clientv3.Client, error) {
	k.mu.Lock()
	c := k.one[ep]
	k.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := k.dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.one == nil { // closed meanwhile
		c.Close()
		return nil, errors.New("etcdleader: closed")
	}
	if old := k.one[ep]; old != nil {
		c.Close()
		return old, nil
	}
	k.one[ep] = c
	return c, nil
}
