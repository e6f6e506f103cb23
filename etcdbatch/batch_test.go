package etcdbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdbatch"
	"github.com/otpgate/otpgate/etcdtest"
)

// countingKV counts the requests that reach etcd.
type countingKV struct {
	clientv3.KV
	mu   sync.Mutex
	txns int
}

func (c *countingKV) Txn(ctx context.Context) clientv3.Txn {
	c.mu.Lock()
	c.txns++
	c.mu.Unlock()
	return c.KV.Txn(ctx)
}

// TestConcurrentIncrements: 64 callers each add one to a counter of their
// own and to one of four shared counters, by compare-and-swap, many times
// at once. Every transaction keeps its own compare and outcome, so no
// increment is lost or counted twice, and they reach etcd in far fewer
// requests than there are transactions.
func TestConcurrentIncrements(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	kv := &countingKV{KV: etcd.Client(t)}
	b := etcdbatch.New(kv)
	defer b.Close()
	ctx := context.Background()
	const callers, rounds, sharedRounds = 64, 30, 8
	// incr adds one to key by compare-and-swap, again on conflict, and
	// reports how many transactions that took.
	incr := func(key string) (int, error) {
		for n := 1; ; n++ {
			resp, err := b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(key, "1")}, []clientv3.Op{clientv3.OpGet(key)})
			if err != nil {
				return n, err
			}
			if resp.Succeeded {
				return n, nil
			}
			kv := resp.Responses[0].GetResponseRange().Kvs[0]
			v, _ := strconv.Atoi(string(kv.Value))
			resp, err = b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)},
				[]clientv3.Op{clientv3.OpPut(key, strconv.Itoa(v+1))}, nil)
			if err != nil {
				return n, err
			}
			if resp.Succeeded {
				return n, nil
			}
		}
	}
	// Each caller its own counter first, then all of them four shared
	// ones, where most compares fail.
	var mu sync.Mutex
	txns := map[string]int{}
	requests := map[string]int{}
	for _, phase := range []string{"own", "shared"} {
		kv.mu.Lock()
		kv.txns = 0
		kv.mu.Unlock()
		var wg sync.WaitGroup
		for i := range callers {
			key := fmt.Sprintf("/own/%d", i)
			if phase == "shared" {
				key = fmt.Sprintf("/shared/%d", i%4)
			}
			times := rounds
			if phase == "shared" {
				times = sharedRounds
			}
			wg.Go(func() {
				for range times {
					n, err := incr(key)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					txns[phase] += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		kv.mu.Lock()
		requests[phase] = kv.txns
		kv.mu.Unlock()
		t.Logf("%s counters: %d transactions in %d requests", phase, txns[phase], requests[phase])
	}
	get := func(key string) int {
		resp, err := etcd.Client(t).Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("%s: %v, %v", key, resp, err)
		}
		v, _ := strconv.Atoi(string(resp.Kvs[0].Value))
		return v
	}
	for i := range callers {
		if v := get(fmt.Sprintf("/own/%d", i)); v != rounds {
			t.Errorf("/own/%d: got %d, want %d", i, v, rounds)
		}
	}
	for i := range 4 {
		if v := get(fmt.Sprintf("/shared/%d", i)); v != callers/4*sharedRounds {
			t.Errorf("/shared/%d: got %d, want %d", i, v, callers/4*sharedRounds)
		}
	}
	if requests["own"]*8 > txns["own"] {
		t.Errorf("%d transactions took %d requests: want them batched, at least eight to a request", txns["own"], requests["own"])
	}
}

// TestOneBadTransactionFailsAlone: a put under a lease etcd does not know
// fails, and the transactions batched with it do not.
func TestOneBadTransactionFailsAlone(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	b := etcdbatch.New(cli)
	defer b.Close()
	ctx := context.Background()
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() {
				opts := []clientv3.OpOption{}
				if i == 7 {
					opts = append(opts, clientv3.WithLease(clientv3.LeaseID(0x7eadbeef)))
				}
				_, errs[i] = b.Txn(ctx, nil, []clientv3.Op{clientv3.OpPut(fmt.Sprintf("/k/%d/%d", round, i), "v", opts...)}, nil)
			})
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case i == 7 && !errors.Is(err, rpctypes.ErrLeaseNotFound):
				t.Errorf("round %d: the put under an unknown lease: got %v, want ErrLeaseNotFound", round, err)
			case i != 7 && err != nil:
				t.Errorf("round %d: put %d: %v", round, i, err)
			}
		}
	}
	resp, err := cli.Get(ctx, "/k/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 20*15 {
		t.Errorf("got %v keys (%v), want %d", resp.Count, err, 20*15)
	}
}

// TestSameKeyNotInOneBatch: transactions writing the same key at once are
// sent in different requests (etcd refuses a key twice in one), and each
// sees what the one before it wrote.
func TestSameKeyNotInOneBatch(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	b := etcdbatch.New(cli)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	won := make(chan int, 32)
	for i := range 32 {
		wg.Go(func() {
			resp, err := b.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("/once"), "=", 0)},
				[]clientv3.Op{clientv3.OpPut("/once", strconv.Itoa(i)), clientv3.OpPut(fmt.Sprintf("/mine/%d", i), "")}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if resp.Succeeded {
				won <- i
			}
		})
	}
	wg.Wait()
	close(won)
	if n := len(won); n != 1 {
		t.Fatalf("%d transactions wrote /once, want exactly 1", n)
	}
	w := <-won
	resp, err := cli.Get(ctx, "/once")
	if err != nil || string(resp.Kvs[0].Value) != strconv.Itoa(w) {
		t.Errorf("/once: got %v (%v), want %d", resp, err, w)
	}
}
