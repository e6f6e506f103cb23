package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otpgate/otpgate/etcdbatch"
	"github.com/otpgate/otpgate/etcdleader"
)

// ErrUnavailable is wrapped by the errors of writes while etcd cannot be
// reached or has no quorum: nothing was written.
var ErrUnavailable = errors.New("etcd is unavailable")

// Etcd says where the shared store is (store.etcd in the configuration).
type Etcd struct {
	// Endpoints are the etcd members' client URLs.
	Endpoints []string
	// Prefix is put before every key, so that several otpgate clusters
	// may share one etcd. Empty means "/otpgate/".
	Prefix string
	// DialTimeout bounds connecting to a member. Zero means 5 s.
	DialTimeout time.Duration
	// RequestTimeout bounds one read or write. Zero means 2 s.
	RequestTimeout time.Duration
	// TLS, when set, is used to reach the members (and to prove this
	// node to them with a client certificate).
	TLS *tls.Config
	// Username and Password log in to etcd; empty means no
	// authentication.
	Username, Password string
	// AuditKeep is how long the node's audit entries are kept in etcd as
	// well, for "otpgate audit" on the other nodes (see clusteraudit.go).
	// Zero means 24 h; negative keeps none there.
	AuditKeep time.Duration
	// Retry is how long to wait before watching again after a watch
	// failed, and between two checks that etcd answers. Zero means 1 s.
	Retry time.Duration
	// WriteWait is how long a write keeps trying etcd while it cannot
	// be reached or has no leader (an election takes seconds), in tries
	// of at most RequestTimeout and 1 s each. Zero means 6 s: gateways
	// wait 3 to 5 s and send again, two or three times, and the
	// retransmission cache gives the copies the first request's answer.
	WriteWait time.Duration
}

// tryFor bounds one try of a write: a member without a leader holds a
// proposal until it gives up, so a try cut short and made again reaches
// the new leader sooner.
const tryFor = time.Second

// skipAfter is how many checks in a row must fail, over more than a
// write's wait, before writes stop trying etcd and fail at once.
const skipAfter = 3

// findLeaderEvery is how often the node asks which member leads, to send
// its batches of writes there (etcdleader); a write that finds the
// leader's connection dead asks at once.
const findLeaderEvery = 5 * time.Second

// maxEtcdOps is the most operations etcd takes in one transaction unless
// told otherwise (its --max-txn-ops).
const maxEtcdOps = 128

// etcdEngine is the store's shared engine: etcd, read through a watched
// copy (mirror), written with transactions that compare what they read.
type etcdEngine struct {
	db        *DB
	cli       *clientv3.Client
	batch     *etcdbatch.Batcher // sends the transactions of logins together
	leader    *etcdleader.KV     // and to the leader
	prefix    string
	ends      []string
	timeout   time.Duration
	wait      time.Duration // WriteWait
	retry     time.Duration
	mirror    *mirror
	health    health
	auditKeep time.Duration
	audit     sharedAudit
	// afterChunk, set by tests, runs after each chunk of a bulk write.
	afterChunk func(n int)
	ctx        context.Context // ends at close
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

func openEtcd(db *DB, c Etcd) (*etcdEngine, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("open etcd: no endpoints")
	}
	c = c.withDefaults()
	e := &etcdEngine{
		db:      db,
		prefix:  c.Prefix,
		ends:    c.Endpoints,
		timeout: c.RequestTimeout,
		wait:    c.WriteWait,
		retry:   c.Retry,
		mirror:  newMirror(),
	}
	e.auditKeep = c.AuditKeep
	if e.auditKeep == 0 {
		e.auditKeep = 24 * time.Hour
	}
	e.health = health{log: db.log, now: db.now, where: e.where()}
	cli, _, err := c.Dial()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", e.where(), err)
	}
	e.cli = cli
	e.leader = etcdleader.New(cli, c.Endpoints, func(ctx context.Context, ep string) (*clientv3.Client, error) {
		one := c
		one.Endpoints = []string{ep}
		return one.dial(ctx)
	}, findLeaderEvery)
	e.batch = etcdbatch.New(e.leader)
	// First, before the store is read: what a writer that died left half
	// way is undone.
	rctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	err = e.recoverBulk(rctx)
	cancel()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		db.log.Warn("a bulk write left half way is undone later", "store", e.where(), "err", err)
	}
	rev, err := e.load(context.Background())
	if err != nil {
		e.closeClients()
		return nil, fmt.Errorf("open etcd %s: read the store: %w", e.where(), err)
	}
	if v := e.mirror.get(etcdKey(bucketMeta, []byte(metaFormat))).v; v != nil {
		if n, err := strconv.Atoi(string(v)); err != nil || n > Format {
			e.closeClients()
			return nil, fmt.Errorf("open %s: %w (meta/%s is %q); this binary reads up to format %d: upgrade otpgate on this node", e.where(), ErrNewerFormat, metaFormat, v, Format)
		}
	}
	if err := e.recordFormat(); err != nil {
		e.closeClients()
		return nil, fmt.Errorf("open %s: record the store's format: %w", e.where(), err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.ctx, e.stop = ctx, stop
	e.wg.Go(func() { e.watch(ctx, rev) })
	e.wg.Go(func() { e.probe(ctx) })
	e.wg.Go(func() { e.shareAuditLoop(ctx) })
	return e, nil
}

// recordFormat writes this build's format into the shared store, unless
// it records it (or a newer one, which open refused) already: a build of
// an older format then refuses the store rather than misread what this
// one writes (the layout differs only in what this build writes, so there
// is nothing to convert).
func (e *etcdEngine) recordFormat() error {
	k := e.prefix + etcdKey(bucketMeta, []byte(metaFormat))
	want := strconv.Itoa(Format)
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	for range 3 {
		resp, err := e.cli.Get(ctx, k)
		if err != nil {
			return err
		}
		cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		if len(resp.Kvs) > 0 {
			if n, err := strconv.Atoi(string(resp.Kvs[0].Value)); err == nil && n >= Format {
				return nil
			}
			cmp = clientv3.Compare(clientv3.ModRevision(k), "=", resp.Kvs[0].ModRevision)
		}
		t, err := e.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, want)).Commit()
		if err != nil || t.Succeeded {
			return err
		}
	}
	return errors.New("the format key keeps changing")
}

// where names the cluster and prefix.
func (e *etcdEngine) where() string {
	return fmt.Sprintf("etcd %s prefix %s", strings.Join(e.ends, ","), e.prefix)
}

func (e *etcdEngine) close() {
	e.stop()
	e.wg.Wait()
	e.closeClients()
}

// closeClients closes what talks to etcd.
func (e *etcdEngine) closeClients() {
	e.batch.Close()
	e.leader.Close()
	e.cli.Close()
}

// probe asks etcd for a key every retry, through its quorum, to know
// whether writes can be made: for /healthz, the metric and the log, and,
// after skipAfter failures in a row, to make writes fail at once.
func (e *etcdEngine) probe(ctx context.Context) {
	t := time.NewTicker(e.retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, e.timeout)
		_, err := e.cli.Get(pctx, e.prefix+"meta/key_id")
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.health.down(err)
		} else {
			e.health.up()
		}
	}
}

// Unavailable returns why writes cannot be made now (etcd cannot be
// reached or has no quorum, as the last check or write found), or nil.
// Writes try etcd all the same until several checks in a row failed. With bbolt it is always nil: a file
// that cannot be written shows in the writes' own errors.
func (db *DB) Unavailable() error {
	if db.etcd == nil {
		return nil
	}
	return db.etcd.health.failing()
}

// Hopeless returns why a write to etcd should fail at once, without
// trying: several checks in a row failed, over more than a write's wait
// (see Etcd.WriteWait). Nil while a write should try; always nil with
// bbolt.
func (db *DB) Hopeless() error {
	if db.etcd == nil {
		return nil
	}
	return db.etcd.health.skip(db.etcd.wait)
}

// health is whether etcd takes writes, and the log lines about it: the
// first at once, then one a minute while it lasts, and one when it ends.
type health struct {
	mu     sync.Mutex
	err    error     // why etcd takes no writes; nil: it does
	since  time.Time // when err began
	fails  int       // checks failed in a row
	logged time.Time // the last line about err or a note
	log    *slog.Logger
	now    func() time.Time
	where  string
}

// ReportEvery is the least time between two log lines about etcd being
// unavailable.
const ReportEvery = time.Minute

// down records a failed check.
func (h *health) down(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails++
	h.failedLocked(err)
}

// tried records a write that etcd did not take in its time: it shows in
// /healthz and the log, but the next write tries again.
func (h *health) tried(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failedLocked(err)
}

func (h *health) failedLocked(err error) {
	now := h.now()
	if h.err == nil {
		h.since = now
		h.logged = time.Time{}
	}
	h.err = err
	if h.logged.IsZero() || now.Sub(h.logged) >= ReportEvery {
		h.logged = now
		h.log.Error("etcd is unavailable: logins from trusted places are answered from this node's copy; codes wait for it a few seconds, then are refused, until it is back",
			"store", h.where, "since", h.since.UTC().Format(time.RFC3339), "err", err)
	}
}

func (h *health) up() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails = 0
	if h.err != nil {
		h.log.Info("etcd is available again", "store", h.where, "down_for", h.now().Sub(h.since).Round(time.Second).String())
		h.err = nil
	}
}

// skip returns why a write should not try etcd at all: skipAfter checks
// in a row failed, and etcd has failed for longer than wait, so that a
// write would wait in vain. Otherwise nil.
func (h *health) skip(wait time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fails < skipAfter || h.now().Sub(h.since) < wait {
		return nil
	}
	return fmt.Errorf("%w since %s: %v", ErrUnavailable, h.since.UTC().Format(time.RFC3339), h.err)
}

// note logs a failure that does not stop writes (a watch to start
// again), at most once per ReportEvery.
func (h *health) note(what string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now(); h.logged.IsZero() || now.Sub(h.logged) >= ReportEvery {
		h.logged = now
		h.log.Warn(what, "store", h.where, "err", err)
	}
}

func (h *health) failing() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("%w since %s: %v", ErrUnavailable, h.since.UTC().Format(time.RFC3339), h.err)
}

// reader is a read-only transaction on the mirror.
func (e *etcdEngine) reader() *etcdKV { return &etcdKV{e: e} }

func (e *etcdEngine) newTxn() *etcdKV {
	return &etcdKV{e: e, reads: map[string]int64{}, writes: map[string][]byte{}}
}

func (e *etcdEngine) update(fn func(*Tx) error) error {
	// Under contention (a tenant's budget counted by every node) each
	// run loses to one that won: keep running while the time a request
	// may take lasts.
	start := time.Now()
	for time.Since(start) < max(e.timeout, e.wait) {
		t := e.newTxn()
		tx := &Tx{kv: t, db: e.db}
		if err := e.db.guarded(fn, func() error { return fn(tx) }); err != nil {
			return err
		}
		ok := true
		if len(t.order) > 0 {
			var err error
			if ok, err = e.commit(t); err != nil {
				return err
			}
		}
		if ok {
			e.db.queueAudit(tx.audit)
			return nil
		}
	}
	return fmt.Errorf("commit to etcd: the keys read keep changing: %w", ErrConflict)
}

func (e *etcdEngine) commitIf(r Read, write func(*Tx) error) error {
	t := e.newTxn()
	t.reads[userKey(r.name)] = r.mod
	t.reads[stepKey(r.name)] = r.stepMod
	t.reads[etcdKey(bucketSends, farKey(r.name))] = r.farMod
	tx := &Tx{kv: t, db: e.db}
	if write != nil {
		if err := e.db.guarded(write, func() error { return write(tx) }); err != nil {
			return err
		}
	}
	ok, err := e.commit(t)
	if err != nil {
		return err
	}
	if !ok {
		return ErrConflict
	}
	e.db.queueAudit(tx.audit)
	return nil
}

// commit writes t's writes if every key it read has the revision it had
// when read, and reports whether it did. When it did not, the keys read
// are refreshed in the mirror from the same transaction's answer, so
// that the function runs again on what etcd holds.
func (e *etcdEngine) commit(t *etcdKV) (bool, error) {
	if err := e.health.skip(e.wait); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	if len(t.writes)+len(t.order) > maxEtcdOps || len(t.reads) > maxEtcdOps {
		// More than etcd takes at once (a conservative count: ops() is
		// at most one per key written or prefix deleted).
		return e.commitBulk(t)
	}
	ops := t.ops()
	keys := make([]string, 0, len(t.reads))
	cmps := make([]clientv3.Cmp, 0, len(t.reads))
	gets := make([]clientv3.Op, 0, len(t.reads))
	for k, mod := range t.reads {
		keys = append(keys, k)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(e.prefix+k), "=", mod))
		gets = append(gets, clientv3.OpGet(e.prefix+k))
	}
	resp, err := e.txn(func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return e.batch.Txn(ctx, cmps, ops, gets)
	})
	if err != nil {
		return false, e.failed(err)
	}
	e.health.up()
	rev := resp.Header.Revision
	e.mirror.mu.Lock()
	defer e.mirror.mu.Unlock()
	e.mirror.known = max(e.mirror.known, rev)
	if resp.Succeeded {
		for _, w := range t.order {
			if w.prefix {
				for k := range e.mirror.kv {
					if strings.HasPrefix(k, w.key) {
						e.mirror.putLocked(k, mirrored{at: rev})
					}
				}
				continue
			}
			if v := t.writes[w.key]; v != nil {
				e.mirror.kv[w.key] = mirrored{v: v, mod: rev, at: rev}
			} else {
				e.mirror.putLocked(w.key, mirrored{at: rev})
			}
		}
		return true, nil
	}
	for i, r := range resp.Responses {
		if kvs := r.GetResponseRange().GetKvs(); len(kvs) == 1 {
			e.mirror.setLocked(keys[i], kvs[0].Value, kvs[0].ModRevision, rev)
		} else {
			e.mirror.setLocked(keys[i], nil, 0, rev)
		}
	}
	return false, nil
}

// txn runs a transaction, and again while etcd cannot be reached or has
// no leader, until the write's time (WriteWait) is spent. Running one
// again is safe: each compares the revisions it read, so one that took
// effect unseen makes the next fail the compare, and the function runs
// on what etcd holds.
func (e *etcdEngine) txn(do func(context.Context) (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
	end := time.Now().Add(max(e.wait, e.timeout))
	for {
		left := time.Until(end)
		ctx, cancel := context.WithTimeout(context.Background(), min(left, e.timeout, tryFor))
		resp, err := do(ctx)
		cancel()
		if err == nil || !unreachable(err) || time.Until(end) < 50*time.Millisecond {
			return resp, err
		}
		pause := time.NewTimer(min(50*time.Millisecond, time.Until(end)))
		<-pause.C
	}
}

// unreachable reports whether err means etcd cannot be reached or has no
// quorum, rather than that the request was wrong.
func unreachable(err error) bool { return Unreachable(err) }

// Unreachable reports whether an etcd call's err means etcd cannot be
// reached or has no leader now (so that trying again later may work),
// rather than that the request was wrong.
func Unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// What members answer while they elect a leader, or lost the one
	// that had the request.
	for _, e := range []error{rpctypes.ErrNoLeader, rpctypes.ErrNotLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrStopped,
		rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrUnhealthy} {
		if errors.Is(err, e) {
			return true
		}
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// queueAudit writes to the file the audit entries of a transaction
// committed to etcd.
func (db *DB) queueAudit(entries [][]byte) {
	for _, v := range entries {
		db.etcd.shareAudit(v)
		db.enqueue(op{fn: func(tx *Tx) error { return tx.appendAudit(v) }})
	}
}

// etcdKV is kv on etcd: reads come from the mirror and each key read is
// remembered with its revision; writes are gathered, and committed by
// etcdEngine.commit if none of those keys has changed since. A reader (a
// View) remembers nothing.
type etcdKV struct {
	e      *etcdEngine
	reads  map[string]int64  // key → its revision when read; nil in a View
	writes map[string][]byte // key → value written; nil: deleted
	order  []written
}

// ops are the operations that make the transaction's writes: one per key
// (etcd refuses a key twice in one transaction). A prefix deleted is one
// range deletion, or, when the transaction wrote under it afterwards, a
// deletion of each key known under it.
func (t *etcdKV) ops() []clientv3.Op {
	var ops []clientv3.Op
	var ranges []string
	for _, w := range t.order {
		if !w.prefix || slices.Contains(ranges, w.key) {
			continue
		}
		wroteUnder := false
		for k, v := range t.writes {
			if v != nil && strings.HasPrefix(k, w.key) {
				wroteUnder = true
			}
		}
		if !wroteUnder {
			ranges = append(ranges, w.key)
			ops = append(ops, clientv3.OpDelete(t.e.prefix+w.key, clientv3.WithPrefix()))
			continue
		}
		for _, k := range t.e.mirror.scan(w.key) {
			if _, ok := t.writes[k]; !ok {
				t.writes[k] = nil
			}
		}
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := t.writes[k]
		switch {
		case v != nil:
			ops = append(ops, clientv3.OpPut(t.e.prefix+k, string(v)))
		case !slices.ContainsFunc(ranges, func(r string) bool { return strings.HasPrefix(k, r) }):
			ops = append(ops, clientv3.OpDelete(t.e.prefix+k))
		}
	}
	return ops
}

type written struct {
	key    string
	prefix bool // every key under key was deleted
}

func etcdKey(bucket, key []byte) string { return string(bucket) + "/" + string(key) }

func userKey(name string) string { return "users/" + name }

func stepKey(name string) string { return "steps/" + name }

func (t *etcdKV) get(bucket, key []byte) []byte {
	return t.read(etcdKey(bucket, key))
}

func (t *etcdKV) read(k string) []byte {
	if v, mine := t.mine(k); mine {
		return v
	}
	m := t.e.mirror.get(k)
	if t.reads != nil {
		if _, ok := t.reads[k]; !ok {
			t.reads[k] = m.mod
		}
	}
	return m.v
}

// mine returns what the transaction itself wrote under k, if it did.
func (t *etcdKV) mine(k string) ([]byte, bool) {
	if v, ok := t.writes[k]; ok {
		return v, true
	}
	for _, w := range t.order {
		if w.prefix && strings.HasPrefix(k, w.key) {
			return nil, true
		}
	}
	return nil, false
}

func (t *etcdKV) put(bucket, key, value []byte) error {
	return t.write(etcdKey(bucket, key), value)
}

func (t *etcdKV) write(k string, value []byte) error {
	if t.reads == nil {
		return errors.New("write in a read-only transaction")
	}
	value = append([]byte{}, value...) // not nil: nil is deleted
	t.writes[k] = value
	t.order = append(t.order, written{key: k})
	return nil
}

// del deletes a key, if it is still as read: a key not read yet is read
// first, so that what was written meanwhile is not deleted unseen.
func (t *etcdKV) del(bucket, key []byte) error {
	if t.reads == nil {
		return errors.New("write in a read-only transaction")
	}
	k := etcdKey(bucket, key)
	t.read(k)
	t.writes[k] = nil
	t.order = append(t.order, written{key: k})
	return nil
}

func (t *etcdKV) delPrefix(bucket, prefix []byte) error {
	if t.reads == nil {
		return errors.New("write in a read-only transaction")
	}
	k := etcdKey(bucket, prefix)
	for w := range t.writes {
		if strings.HasPrefix(w, k) {
			delete(t.writes, w)
		}
	}
	t.order = append(t.order, written{key: k, prefix: true})
	return nil
}

// scan reads the mirror as it is, with the transaction's own writes; the
// keys it passes are not compared at commit (a write to one is: see del).
func (t *etcdKV) scan(bucket, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	b := string(bucket) + "/"
	keys := t.e.mirror.scan(b + string(prefix))
	for k, v := range t.writes {
		if v != nil && strings.HasPrefix(k, b+string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		v, mine := t.mine(k)
		if !mine {
			v = t.e.mirror.get(k).v
		}
		if v == nil {
			continue
		}
		if more, err := fn([]byte(k[len(b):]), v); err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *etcdKV) usedStep(user string) int64 {
	return decodeUsedStep(t.read(stepKey(user)))
}

// useStep keeps one key per user, their newest step: a write to it
// compares the revision it was read at, so a step is used once across
// the nodes.
func (t *etcdKV) useStep(user string, step int64, _ int64) error {
	v := t.read(stepKey(user))
	if step <= decodeUsedStep(v) {
		return nil
	}
	return t.write(stepKey(user), append(encodeUsedStep(step), stepClaims(v)...))
}

// A user's key under steps/ holds their newest TOTP step used (8 bytes)
// and then the claims made for them that are kept (format 2): each the
// first 16 bytes of its ID's SHA-256 and its Until in Unix nanoseconds.
const claimSize = 24

// maxUserClaims bounds the claims kept in one user's key: a user answers
// a few States within the minutes a claim is kept; past the bound the
// oldest go.
const maxUserClaims = 64

// stepClaims returns the claims of a steps key's value.
func stepClaims(v []byte) []byte {
	if len(v) < 8 || (len(v)-8)%claimSize != 0 {
		return nil
	}
	return v[8:]
}

func (t *etcdKV) claimed(user, id string) bool {
	sum := claimSum(id)
	old := stepClaims(t.read(stepKey(user)))
	for i := 0; i < len(old); i += claimSize {
		if bytes.Equal(old[i:i+16], sum[:]) {
			return true
		}
	}
	return false
}

// claim adds id's claim to user's steps key, dropping the claims whose
// Until has passed, and the oldest past maxUserClaims.
func (t *etcdKV) claim(user, id string, until time.Time) error {
	if t.claimed(user, id) {
		return ErrClaimed
	}
	k := stepKey(user)
	v := t.read(k)
	now := t.e.db.now().UnixNano()
	kept := encodeUsedStep(decodeUsedStep(v))
	old := stepClaims(v)
	for i := 0; i < len(old); i += claimSize {
		if c := old[i : i+claimSize]; int64(binary.BigEndian.Uint64(c[16:])) >= now {
			kept = append(kept, c...)
		}
	}
	if n := (len(kept) - 8) / claimSize; n >= maxUserClaims {
		kept = append(kept[:8], kept[8+(n-maxUserClaims+1)*claimSize:]...)
	}
	sum := claimSum(id)
	kept = append(kept, sum[:]...)
	kept = binary.BigEndian.AppendUint64(kept, uint64(until.UnixNano()))
	return t.write(k, kept)
}

// claimSum is how a claim names its ID in a steps key: the first 16 bytes
// of the ID's SHA-256.
func claimSum(id string) [16]byte {
	sum := sha256.Sum256([]byte(id))
	return [16]byte(sum[:16])
}

func encodeUsedStep(step int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(step)) }

func decodeUsedStep(v []byte) int64 {
	if len(v) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v[:8]))
}
