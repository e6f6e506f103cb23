// Package etcdbatch sends the etcd transactions that a process asks for
// at the same moment as one request. etcd spends most of a small
// transaction's cost on the request itself (the gRPC call, a Raft entry,
// a write-ahead-log record, waking the watchers), not on its keys: on
// three members sharing two cores, 64 callers each sending their own
// one-key transaction got about 3,000 a second through, the same 64
// through a Batcher about 12,000, at a fifth of the members' CPU each.
//
// Each transaction keeps its own compares and its own outcome: a batch is
// one request whose Then holds each caller's transaction nested
// (clientv3.OpTxn). etcd evaluates every compare of a request, the
// nested ones too, on what was there before the request, and only then
// writes; so a batch never holds a transaction that compares or reads a
// key another of the batch writes (it would not see that write, and two
// that each compare what the other writes would both succeed, which no
// order of the two alone gives), nor two that write the same key (etcd
// refuses that). The later one waits for the next batch. What a batch
// does is then what its transactions do one after the other, in any
// order. While one batch is in flight the next gathers, so a
// lone caller waits for nothing but its own request.
package etcdbatch

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxOps is the most operations etcd takes in one transaction unless told
// otherwise (--max-txn-ops); a nested transaction may hold what its
// parent has left of it.
const maxOps = 128

// maxBytes bounds the keys and values of one batch, well inside etcd's
// default request limit (--max-request-bytes, 1.5 MiB).
const maxBytes = 512 << 10

// noDeadline is how long a batch may take when none of its callers set a
// deadline.
const noDeadline = 5 * time.Second

// Batcher combines concurrent transactions. It is safe for concurrent use.
type Batcher struct {
	kv    clientv3.KV
	queue chan *call
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// call is one caller's transaction.
type call struct {
	ctx       context.Context
	cmps      []clientv3.Cmp
	then, els []clientv3.Op
	keys      []string // the keys it writes
	reads     []span   // the keys and ranges it compares or reads
	size      int      // its operations, as etcd counts them
	bytes     int
	alone     bool // deletes a range, or writes a key twice: sent on its own
	reply     chan result
}

// span is a key, or a range [key, end) as etcd takes it (end "\x00":
// every key from key on).
type span struct{ key, end string }

// has reports whether k is in s.
func (s span) has(k string) bool {
	switch s.end {
	case "":
		return k == s.key
	case "\x00":
		return k >= s.key
	}
	return k >= s.key && k < s.end
}

// touched is what the calls of a batch write and read.
type touched struct {
	written map[string]bool
	read    map[string]bool // keys compared or read
	ranges  []span          // ranges read
}

// conflicts reports whether c writes a key the batch writes or reads, or
// reads a key the batch writes.
func (t *touched) conflicts(c *call) bool {
	for _, k := range c.keys {
		if t.written[k] || t.read[k] {
			return true
		}
		for _, r := range t.ranges {
			if r.has(k) {
				return true
			}
		}
	}
	for _, r := range c.reads {
		if r.end == "" {
			if t.written[r.key] {
				return true
			}
			continue
		}
		for k := range t.written {
			if r.has(k) {
				return true
			}
		}
	}
	return false
}

// add records what c writes and reads.
func (t *touched) add(c *call) {
	for _, k := range c.keys {
		t.written[k] = true
	}
	for _, r := range c.reads {
		if r.end == "" {
			t.read[r.key] = true
		} else {
			t.ranges = append(t.ranges, r)
		}
	}
}

type result struct {
	resp *clientv3.TxnResponse
	err  error
}

// New returns a Batcher sending through kv (usually a *clientv3.Client).
// Close stops it.
func New(kv clientv3.KV) *Batcher {
	b := &Batcher{kv: kv, queue: make(chan *call, 1024), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Close stops the Batcher once the batch in flight has its answer; later
// transactions go to etcd one by one.
func (b *Batcher) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

// Txn runs If(cmps).Then(then).Else(els) as its own transaction would, in
// a batch with others asked for at the same time. When ctx ends first, Txn
// returns ctx's error, and the transaction may still take effect.
func (b *Batcher) Txn(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	c := newCall(ctx, cmps, then, els)
	select {
	case <-b.stop:
		return c.send(b.kv)
	default:
	}
	select {
	case b.queue <- c:
	case <-b.stop:
		return c.send(b.kv)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newCall(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) *call {
	c := &call{ctx: ctx, cmps: cmps, then: then, els: els, reply: make(chan result, 1)}
	c.size = max(len(cmps), len(then), len(els))
	seen := map[string]bool{}
	for _, ops := range [][]clientv3.Op{then, els} {
		for _, op := range ops {
			c.bytes += len(op.KeyBytes()) + len(op.ValueBytes())
			switch {
			case op.IsTxn():
				c.alone = true // nested already: keep it simple
			case op.IsPut(), op.IsDelete():
				k := string(op.KeyBytes())
				if len(op.RangeBytes()) > 0 || seen[k] {
					c.alone = true
				}
				seen[k] = true
				c.keys = append(c.keys, k)
			case op.IsGet():
				c.reads = append(c.reads, span{string(op.KeyBytes()), string(op.RangeBytes())})
			}
		}
	}
	for _, cmp := range cmps {
		c.bytes += len(cmp.KeyBytes()) + len(cmp.ValueBytes())
		c.reads = append(c.reads, span{string(cmp.KeyBytes()), string(cmp.GetCompare().RangeEnd)})
	}
	if c.size > maxOps/2 || c.bytes > maxBytes {
		c.alone = true
	}
	return c
}

// send runs c as a transaction of its own.
func (c *call) send(kv clientv3.KV) (*clientv3.TxnResponse, error) {
	return kv.Txn(c.ctx).If(c.cmps...).Then(c.then...).Else(c.els...).Commit()
}

// run sends batches until stopped: whatever is queued when the last batch
// has its answer makes the next.
func (b *Batcher) run() {
	defer close(b.done)
	var pending []*call
	for {
		if len(pending) == 0 {
			select {
			case c := <-b.queue:
				pending = append(pending, c)
			case <-b.stop:
				return
			}
		}
	gather:
		for len(pending) < cap(b.queue) {
			select {
			case c := <-b.queue:
				pending = append(pending, c)
			default:
				break gather
			}
		}
		var batch []*call
		batch, pending = pick(pending)
		b.sendBatch(batch)
	}
}

// pick takes from pending, in order, the calls that may share a request:
// none writing a key another writes, compares or reads, within etcd's
// limits. A call that must go alone goes alone, when it is first.
func pick(pending []*call) (batch, rest []*call) {
	if pending[0].alone {
		return pending[:1], pending[1:]
	}
	t := touched{written: map[string]bool{}, read: map[string]bool{}}
	widest, bytes := 0, 0
	for _, c := range pending {
		fits := !c.alone && len(batch)+1+max(widest, c.size) <= maxOps && bytes+c.bytes <= maxBytes
		if !fits || t.conflicts(c) {
			rest = append(rest, c)
			continue
		}
		t.add(c)
		widest, bytes = max(widest, c.size), bytes+c.bytes
		batch = append(batch, c)
	}
	return batch, rest
}

// sendBatch sends batch as one request and gives each call its own
// transaction's answer. When the request fails for a reason other than
// time (one call's lease unknown, a limit of etcd's), each call still
// waiting is sent on its own, so that it gets its own answer.
func (b *Batcher) sendBatch(batch []*call) {
	live := batch[:0:0]
	for _, c := range batch {
		if c.ctx.Err() == nil {
			live = append(live, c)
		} else {
			c.reply <- result{err: c.ctx.Err()}
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		resp, err := c.send(b.kv)
		c.reply <- result{resp, err}
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	ops := make([]clientv3.Op, len(live))
	for i, c := range live {
		ops[i] = clientv3.OpTxn(c.cmps, c.then, c.els)
	}
	resp, err := b.kv.Txn(ctx).Then(ops...).Commit()
	if err == nil && len(resp.Responses) != len(live) {
		err = errShortAnswer
	}
	if err != nil {
		for _, c := range live {
			if c.ctx.Err() != nil {
				c.reply <- result{err: err}
				continue
			}
			go func() {
				resp, err := c.send(b.kv)
				c.reply <- result{resp, err}
			}()
		}
		return
	}
	for i, c := range live {
		sub := resp.Responses[i].GetResponseTxn()
		if sub == nil {
			c.reply <- result{err: errShortAnswer}
			continue
		}
		r := (*clientv3.TxnResponse)(sub)
		r.Header = resp.Header
		c.reply <- result{resp: r}
	}
}

// batchContext lasts as long as the longest of the calls' deadlines.
func batchContext(calls []*call) (context.Context, context.CancelFunc) {
	var end time.Time
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			d = time.Now().Add(noDeadline)
		}
		if d.After(end) {
			end = d
		}
	}
	return context.WithDeadline(context.Background(), end)
}

type batchError string

func (e batchError) Error() string { return string(e) }

// errShortAnswer: etcd answered a batch with fewer answers than it held.
const errShortAnswer = batchError("etcd answered a batch of transactions with fewer answers than it held")
