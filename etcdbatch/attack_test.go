package etcdbatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdbatch"
	"github.com/otpgate/otpgate/etcdtest"
)

// gateKV holds the first transaction sent until release is closed, so
// that the callers that come meanwhile are gathered into one batch.
type gateKV struct {
	clientv3.KV
	once    sync.Once
	release chan struct{}
	held    chan struct{}
}

func (g *gateKV) Txn(ctx context.Context) clientv3.Txn {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.held)
		<-g.release
	}
	return g.KV.Txn(ctx)
}

// TestNoWriteSkewInOneBatch: two transactions, each comparing the key the
// other writes (T1: if A unchanged, write B; T2: if B unchanged, write
// A), write different keys, so the Batcher may put them in one request.
// Run one after the other, as each would alone, the second must fail its
// compare. etcd evaluates every compare of a request, nested ones too,
// against what was there before the request (compareToPath), so in one
// batch both would succeed: write skew that no order of the two gives.
func TestNoWriteSkewInOneBatch(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 10 {
		g := &gateKV{KV: cli, release: make(chan struct{}), held: make(chan struct{})}
		b := etcdbatch.New(g)
		a, bk := "/skew/a", "/skew/b"
		ra, err := cli.Put(ctx, a, "0")
		if err != nil {
			t.Fatal(err)
		}
		rb, err := cli.Put(ctx, bk, "0")
		if err != nil {
			t.Fatal(err)
		}
		revA, revB := ra.Header.Revision, rb.Header.Revision
		// A first transaction, held, so that the two of interest gather.
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := b.Txn(ctx, nil, []clientv3.Op{clientv3.OpPut("/skew/first", "x")}, nil); err != nil {
				t.Error(err)
			}
		})
		<-g.held
		var ok1, ok2 bool
		wg.Go(func() {
			resp, err := b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(a), "=", revA)},
				[]clientv3.Op{clientv3.OpPut(bk, "t1")}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			ok1 = resp.Succeeded
		})
		wg.Go(func() {
			resp, err := b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(bk), "=", revB)},
				[]clientv3.Op{clientv3.OpPut(a, "t2")}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			ok2 = resp.Succeeded
		})
		etcdbatch.WaitQueued(ctx, t, b, 2)
		close(g.release)
		wg.Wait()
		b.Close()
		if ok1 && ok2 {
			t.Fatalf("round %d: both transactions succeeded, each having compared the key the other wrote (write skew)", round)
		}
		if !ok1 && !ok2 {
			t.Fatalf("round %d: neither transaction succeeded", round)
		}
	}
}

// TestCompareSeesEarlierWriteInBatch: T1 creates K; T2, queued after it,
// writes L only if K does not exist. Had they shared a request, T2's
// compare would have been evaluated before T1's write (etcd evaluates
// all compares of a request first) and succeeded, although the package
// promised each transaction what the ones before it wrote.
func TestCompareSeesEarlierWriteInBatch(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := &gateKV{KV: cli, release: make(chan struct{}), held: make(chan struct{})}
	b := etcdbatch.New(g)
	defer b.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.Txn(ctx, nil, []clientv3.Op{clientv3.OpPut("/order/first", "x")}, nil); err != nil {
			t.Error(err)
		}
	})
	<-g.held
	var r1, r2 *clientv3.TxnResponse
	wg.Go(func() {
		var err error
		if r1, err = b.Txn(ctx, nil, []clientv3.Op{clientv3.OpPut("/order/k", "t1")}, nil); err != nil {
			t.Error(err)
		}
	})
	etcdbatch.WaitQueued(ctx, t, b, 1) // T1 queued first
	wg.Go(func() {
		var err error
		r2, err = b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("/order/k"), "=", 0)},
			[]clientv3.Op{clientv3.OpPut("/order/l", "t2")}, []clientv3.Op{clientv3.OpGet("/order/k")})
		if err != nil {
			t.Error(err)
		}
	})
	etcdbatch.WaitQueued(ctx, t, b, 2)
	close(g.release)
	wg.Wait()
	if r1 == nil || r2 == nil {
		return
	}
	// Both in one request share its revision; T2 saw K absent though T1,
	// ahead of it in the request, had created it.
	if r1.Header.Revision == r2.Header.Revision && r2.Succeeded {
		t.Errorf("T2 (queued after T1, same request at revision %d) found /order/k absent although T1 created it", r1.Header.Revision)
	}
}

// lossyKV commits the first batch it is sent (a request of nested
// transactions) and then reports it failed, as when the answer is lost
// (etcdserver: request timed out, a connection dropped).
type lossyKV struct {
	clientv3.KV
	mu   sync.Mutex
	lost bool
}

type lossyTxn struct {
	clientv3.Txn
	kv     *lossyKV
	nested bool
}

func (l *lossyKV) Txn(ctx context.Context) clientv3.Txn {
	return &lossyTxn{Txn: l.KV.Txn(ctx), kv: l}
}

func (t *lossyTxn) If(cs ...clientv3.Cmp) clientv3.Txn { t.Txn = t.Txn.If(cs...); return t }
func (t *lossyTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Else(ops...)
	return t
}

func (t *lossyTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	for _, op := range ops {
		t.nested = t.nested || op.IsTxn()
	}
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *lossyTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	t.kv.mu.Lock()
	defer t.kv.mu.Unlock()
	if err == nil && t.nested && !t.kv.lost {
		t.kv.lost = true
		return nil, rpctypes.ErrTimeout
	}
	return resp, err
}

// TestLostBatchAnswerAppliesOnce: a batch that took effect but whose
// answer was lost is sent again one transaction at a time. Each caller's
// compare-guarded transaction (here: create a key only if absent, as a
// sealed State's marker is written) then fails its compare: its caller
// is told no, never that it succeeded twice, and the key is written
// once.
func TestLostBatchAnswerAppliesOnce(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := &lossyKV{KV: cli}
	g := &gateKV{KV: l, release: make(chan struct{}), held: make(chan struct{})}
	b := etcdbatch.New(g)
	defer b.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.Txn(ctx, nil, []clientv3.Op{clientv3.OpPut("/lost/first", "x")}, nil); err != nil {
			t.Error(err)
		}
	})
	<-g.held
	const n = 8
	won := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			k := "/lost/marker/" + string(rune('a'+i))
			resp, err := b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(k, "")}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			won[i] = resp.Succeeded
		})
	}
	etcdbatch.WaitQueued(ctx, t, b, n)
	close(g.release)
	wg.Wait()
	if !l.lost {
		t.Skip("the transactions were not batched")
	}
	for i := range n {
		k := "/lost/marker/" + string(rune('a'+i))
		resp, err := cli.Get(ctx, k)
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version != 1 {
			t.Errorf("%s: got %v (%v), want written once", k, resp.Kvs, err)
		}
		if won[i] {
			t.Errorf("%s: its caller was told it succeeded after a lost answer and a resend (it must fail the compare)", k)
		}
	}
}
