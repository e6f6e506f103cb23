package live

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/etcdbatch"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// Cluster keeps the challenges and approvals of every node in etcd, so
// that any node answers any leg of a login. A challenge that sent a code
// is a key under a lease as long as its code lives; taking it is one
// transaction that reads and deletes the key only if it exists, so of any
// number of nodes taking the same State at once exactly one gets it. One
// that sent nothing, with Key set, is sealed into its State and kept
// nowhere (sealed.go). A held login's node
// watches its approval's key, and a click on any node's page wakes it.
//
// Keys, under the prefix:
//
//	live/ch/<state>/<owner>     a challenge (owner: a hash of user and gateway)
//	live/login/<login>          "<state>/<owner>" of a login's newest challenge
//	live/approval/<id>          an approval and, once decided, its outcome
//	live/held/<login>           the id of a login's approval
//
// It is safe for concurrent use.
type Cluster struct {
	cli    *clientv3.Client
	batch  *etcdbatch.Batcher // puts and takes challenges together
	prefix string
	// Timeout bounds each call to etcd; zero means 2 s.
	Timeout time.Duration
	// RetryFor is how long putting and taking a challenge keep trying while
	// etcd cannot be reached or elects a leader, in tries of at most
	// Timeout and 1 s each; zero means 6 s (see store.Etcd.WriteWait).
	RetryFor time.Duration
	// Hopeless, when set, says why etcd is not worth trying now (see
	// store.DB.Hopeless): putting and taking challenges then fail at once.
	Hopeless func() error
	// Unavailable, when set, says why etcd takes no writes now, as far as
	// is known (see store.DB.Unavailable). A challenge is then kept as a
	// record, whose writing fails, rather than sealed: a code asked for
	// while its answer could not be recorded would only be refused later.
	Unavailable func() error
	// Now is the clock leases are reckoned by; nil means time.Now.
	Now func() time.Time
	// Log hears of a watch that had to be restarted; nil means discard.
	Log *slog.Logger
	// Key, the server key every node shares, seals a challenge that sent
	// nothing into its State (see sealed.go); nil keeps every challenge
	// as a record.
	Key *secret.Key

	leases  *etcdbatch.Leases // one for every challenge that expires in the same 30 s
	sending sendingSession    // the lease of the node's locks for sending (Sending)

	waitMu  sync.Mutex
	waiters map[string]map[chan Outcome]struct{}
	watch   context.CancelFunc // stops the watch; nil until the first Wait
}

// NewCluster returns the challenges and approvals kept in etcd under
// prefix (for example "/otpgate/").
func NewCluster(cli *clientv3.Client, prefix string) *Cluster {
	c := &Cluster{cli: cli, batch: etcdbatch.New(cli), prefix: prefix + "live/", leases: etcdbatch.NewLeases(cli),
		waiters: map[string]map[chan Outcome]struct{}{}}
	c.leases.Now = c.now
	return c
}

// Close stops watching approvals. The client stays open.
func (c *Cluster) Close() {
	c.batch.Close()
	c.closeSending()
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if c.watch != nil {
		c.watch()
		c.watch = nil
	}
}

func (c *Cluster) ctx() (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

// again runs do, and again while etcd cannot be reached or has no
// leader, until RetryFor is spent. A try that took effect unseen is safe to
// follow: a put writes the same, and a take finds the key gone (the
// answer is refused, never accepted twice).
func (c *Cluster) again(do func(ctx context.Context) error) error {
	d, wait := c.Timeout, c.RetryFor
	if d <= 0 {
		d = 2 * time.Second
	}
	if wait <= 0 {
		wait = 6 * time.Second
	}
	if c.Hopeless != nil {
		if err := c.Hopeless(); err != nil {
			return err
		}
	}
	end := time.Now().Add(max(wait, d))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(end), d, time.Second))
		err := do(ctx)
		cancel()
		if err == nil || !store.Unreachable(err) || time.Until(end) < 50*time.Millisecond {
			return err
		}
		pause := time.NewTimer(min(50*time.Millisecond, time.Until(end)))
		<-pause.C
	}
}

func (c *Cluster) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cluster) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// hash names a key after parts that must not appear in it as they are
// (user names, addresses).
func hash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

func (c *Cluster) chKey(id, user, client string) string {
	return c.prefix + "ch/" + id + "/" + hash(user, client)
}

// takenKey marks a record challenge taken, for takenFor (see ErrTaken).
func (c *Cluster) takenKey(id, user, client string) string {
	return c.prefix + "taken/" + hash(id, user, client)
}

// takenFor is how long after a record challenge was taken another
// answer to it is told ErrTaken rather than ErrNotFound: the copy of the
// same answer that a gateway sent to another node at the same moment.
const takenFor = 5 * time.Second

func (c *Cluster) loginKey(user, client string, ip netip.Addr) string {
	return c.prefix + "login/" + hash(user, client, ip.Unmap().String())
}

// leaseGrace is how long a challenge's key is kept past its expiry, for
// "expired" answers (see etcdbatch.Leases).
const leaseGrace = 60 * time.Second

// withLease runs write with a lease lasting past expires.
func (c *Cluster) withLease(ctx context.Context, expires time.Time, write func(clientv3.LeaseID) (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
	return c.leases.With(ctx, expires, write)
}

// Put implements Challenges: a challenge that sent nothing is sealed into
// its State, others are kept as records under their ID.
func (c *Cluster) Put(chp *Challenge) error {
	ch := *chp
	if c.Key != nil && sealable(ch) && (c.Unavailable == nil || c.Unavailable() == nil) {
		state, err := c.seal(ch)
		if err != nil {
			return fmt.Errorf("put challenge: %w", err)
		}
		chp.ID = state
		return nil
	}
	val, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	k := c.chKey(ch.ID, ch.User, ch.Client)
	ptr := strings.TrimPrefix(k, c.prefix+"ch/")
	err = c.again(func(ctx context.Context) error {
		_, err := c.withLease(ctx, ch.Expires, func(l clientv3.LeaseID) (*clientv3.TxnResponse, error) {
			return c.batch.Txn(ctx, nil, []clientv3.Op{
				clientv3.OpPut(k, string(val), clientv3.WithLease(l)),
				clientv3.OpPut(c.loginKey(ch.User, ch.Client, ch.EndUserIP), ptr, clientv3.WithLease(l)),
			}, nil)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("put challenge: %w", err)
	}
	return nil
}

// validID reports whether id can be part of a key: a State is the
// gateway's echo of ours, and may be anything.
func validID(id string) bool {
	return id != "" && len(id) <= 253 && !strings.ContainsAny(id, "/\x00")
}

// Take implements Challenges: one transaction reads and deletes the key
// if it exists, so one taker wins; otherwise it counts the keys of the
// State under any owner, to tell ErrMismatch from ErrNotFound.
func (c *Cluster) Take(id, user, client string) (Challenge, error) {
	switch ch, who, claim, err := c.unseal(id); {
	case errors.Is(err, errNotSealed):
	case err != nil:
		return Challenge{}, err
	case who != string(owner(user, client)):
		return Challenge{}, ErrMismatch
	default:
		ch.User, ch.Client = user, client
		return c.takeSealed(ch, claim)
	}
	if !validID(id) {
		return Challenge{}, ErrNotFound
	}
	k, taken := c.chKey(id, user, client), c.takenKey(id, user, client)
	now := c.now()
	var resp *clientv3.TxnResponse
	err := c.again(func(ctx context.Context) (err error) {
		resp, err = c.withLease(ctx, now.Add(takenFor), func(l clientv3.LeaseID) (*clientv3.TxnResponse, error) {
			return c.batch.Txn(ctx,
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)},
				[]clientv3.Op{clientv3.OpGet(k), clientv3.OpDelete(k),
					clientv3.OpPut(taken, strconv.FormatInt(now.UnixNano(), 10), clientv3.WithLease(l))},
				[]clientv3.Op{clientv3.OpGet(c.prefix+"ch/"+id+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()),
					clientv3.OpGet(taken)})
		})
		return err
	})
	if err != nil {
		return Challenge{}, fmt.Errorf("take challenge: %w", err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			if at, err := strconv.ParseInt(string(kvs[0].Value), 10, 64); err == nil && now.Sub(time.Unix(0, at)) <= takenFor {
				return Challenge{}, ErrTaken
			}
		}
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return Challenge{}, ErrMismatch
		}
		return Challenge{}, ErrNotFound
	}
	return decodeChallenge(resp.Responses[0].GetResponseRange().Kvs[0].Value)
}

// Get implements Challenges.
func (c *Cluster) Get(id string) (Challenge, bool) {
	if ch, _, _, err := c.unseal(id); !errors.Is(err, errNotSealed) {
		return ch, err == nil
	}
	if !validID(id) {
		return Challenge{}, false
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.cli.Get(ctx, c.prefix+"ch/"+id+"/", clientv3.WithPrefix(), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return Challenge{}, false
	}
	ch, err := decodeChallenge(resp.Kvs[0].Value)
	return ch, err == nil
}

func decodeChallenge(b []byte) (Challenge, error) {
	var ch Challenge
	if err := json.Unmarshal(b, &ch); err != nil {
		return Challenge{}, fmt.Errorf("decode challenge: %w", err)
	}
	return ch, nil
}

// newest returns the key of the newest challenge of a login, if any.
func (c *Cluster) newest(ctx context.Context, user, client string, ip netip.Addr) (string, bool, error) {
	resp, err := c.cli.Get(ctx, c.loginKey(user, client, ip))
	if err != nil {
		return "", false, fmt.Errorf("find live challenge: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	return c.prefix + "ch/" + string(resp.Kvs[0].Value), true, nil
}

// Live implements Challenges.
func (c *Cluster) Live(user, client string, ip netip.Addr) (Challenge, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	k, ok, err := c.newest(ctx, user, client, ip)
	if !ok || err != nil {
		return Challenge{}, false, err
	}
	resp, err := c.cli.Get(ctx, k)
	if err != nil {
		return Challenge{}, false, fmt.Errorf("find live challenge: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Challenge{}, false, nil // answered since
	}
	ch, err := decodeChallenge(resp.Kvs[0].Value)
	return ch, err == nil, err
}

// TakeLive implements Challenges. A challenge taken that turns out to
// have expired is gone: it could not be answered anyway.
func (c *Cluster) TakeLive(user, client string, ip netip.Addr, now time.Time) (Challenge, bool, error) {
	var (
		resp *clientv3.TxnResponse
		ok   bool
	)
	err := c.again(func(ctx context.Context) error {
		k, found, err := c.newest(ctx, user, client, ip)
		if ok = found; !found || err != nil {
			return err
		}
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), ">", 0)).
			Then(clientv3.OpGet(k), clientv3.OpDelete(k)).
			Commit()
		return err
	})
	if err != nil {
		return Challenge{}, false, fmt.Errorf("take live challenge: %w", err)
	}
	if !ok {
		return Challenge{}, false, nil
	}
	if !resp.Succeeded {
		return Challenge{}, false, nil
	}
	ch, err := decodeChallenge(resp.Responses[0].GetResponseRange().Kvs[0].Value)
	if err != nil || !now.Before(ch.Expires) {
		return Challenge{}, false, err
	}
	return ch, true, nil
}

// Len implements Challenges: it counts the keys, expired or not, that
// etcd still has; -1 when etcd cannot be asked.
func (c *Cluster) Len() int {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.cli.Get(ctx, c.prefix+"ch/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return -1
	}
	return int(resp.Count)
}

// Prune implements Challenges: etcd removes challenges when their leases
// end, so there is nothing to do.
func (c *Cluster) Prune(time.Time) int { return 0 }

// record is an approval as kept in etcd.
type record struct {
	Approval
	Outcome *Outcome `json:"outcome,omitempty"`
}

func (c *Cluster) approvalKey(id string) string { return c.prefix + "approval/" + id }

// read returns the approval with the given ID and its key's revision; a
// zero revision when there is none.
func (c *Cluster) read(ctx context.Context, id string) (record, int64, error) {
	resp, err := c.cli.Get(ctx, c.approvalKey(id))
	if err != nil {
		return record{}, 0, fmt.Errorf("read approval: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return record{}, 0, nil
	}
	var r record
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return record{}, 0, fmt.Errorf("decode approval: %w", err)
	}
	r.ID = id
	return r, resp.Kvs[0].ModRevision, nil
}

// Hold implements Approvals. Of two nodes holding the same login at once
// (a gateway that asks both), one registers the approval and sends its
// link; the other finds it and waits for the same click.
func (c *Cluster) Hold(key string, a Approval, now time.Time) (Approval, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	hk := c.prefix + "held/" + hash(key)
	for range 3 {
		resp, err := c.cli.Get(ctx, hk)
		if err != nil {
			return Approval{}, false, fmt.Errorf("hold login: %w", err)
		}
		var seen int64
		if len(resp.Kvs) > 0 {
			seen = resp.Kvs[0].ModRevision
			r, rev, err := c.read(ctx, string(resp.Kvs[0].Value))
			if err != nil {
				return Approval{}, false, err
			}
			if rev != 0 && r.Outcome == nil && now.Before(r.Expires) {
				return r.Approval, false, nil
			}
		}
		a.ID = TokenID(a.Token)
		val, err := json.Marshal(record{Approval: a})
		if err != nil {
			return Approval{}, false, err
		}
		txn, err := c.withLease(ctx, a.Expires, func(l clientv3.LeaseID) (*clientv3.TxnResponse, error) {
			return c.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(hk), "=", seen)).
				Then(clientv3.OpPut(hk, a.ID, clientv3.WithLease(l)),
					clientv3.OpPut(c.approvalKey(a.ID), string(val), clientv3.WithLease(l))).
				Commit()
		})
		if err != nil {
			return Approval{}, false, fmt.Errorf("hold login: %w", err)
		}
		if txn.Succeeded {
			return a, true, nil
		}
		// Another node held the same login meanwhile: share its link.
	}
	return Approval{}, false, errors.New("hold login: the held login keeps changing")
}

// Lookup implements Approvals.
func (c *Cluster) Lookup(token string, now time.Time) (Approval, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	r, rev, err := c.read(ctx, TokenID(token))
	if err != nil || rev == 0 || r.Outcome != nil || !now.Before(r.Expires) {
		return Approval{}, false, err
	}
	r.Token = token
	return r.Approval, true, nil
}

// Decide implements Approvals: the outcome is written only if the record
// is unchanged since it was read undecided, so a link decides once
// however many nodes' pages it is clicked on.
func (c *Cluster) Decide(token string, o Outcome, now time.Time) error {
	return c.decide(TokenID(token), o, &now)
}

// Forget implements Approvals.
func (c *Cluster) Forget(id string) error {
	err := c.decide(id, Outcome{Result: TimedOut}, nil)
	if errors.Is(err, ErrGone) {
		return nil
	}
	return err
}

// decide writes o into the undecided approval id, live at *now unless
// now is nil.
func (c *Cluster) decide(id string, o Outcome, now *time.Time) error {
	ctx, cancel := c.ctx()
	defer cancel()
	r, rev, err := c.read(ctx, id)
	switch {
	case err != nil:
		return err
	case rev == 0 || r.Outcome != nil || now != nil && !now.Before(r.Expires):
		return ErrGone
	}
	r.Outcome = &o
	val, err := json.Marshal(r)
	if err != nil {
		return err
	}
	k := c.approvalKey(id)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
		Then(clientv3.OpPut(k, string(val), clientv3.WithIgnoreLease())).
		Commit()
	switch {
	case err != nil:
		return fmt.Errorf("decide approval: %w", err)
	case !resp.Succeeded:
		return ErrGone // decided elsewhere meanwhile
	}
	return nil
}

// Wait implements Approvals. One watch per node on every approval feeds
// the waiters; after registering, the record is read once, for an
// outcome written before the watch could see it.
func (c *Cluster) Wait(id string) (<-chan Outcome, func()) {
	w := make(chan Outcome, 1)
	c.waitMu.Lock()
	if c.watch == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.watch = cancel
		go c.watchApprovals(ctx)
	}
	if c.waiters[id] == nil {
		c.waiters[id] = map[chan Outcome]struct{}{}
	}
	c.waiters[id][w] = struct{}{}
	c.waitMu.Unlock()
	stop := func() {
		c.waitMu.Lock()
		defer c.waitMu.Unlock()
		delete(c.waiters[id], w)
		if len(c.waiters[id]) == 0 {
			delete(c.waiters, id)
		}
	}
	c.check(id)
	return w, stop
}

// check reads the approval id and tells its waiters if it has ended. A
// read that fails leaves them to the watch.
func (c *Cluster) check(id string) {
	ctx, cancel := c.ctx()
	defer cancel()
	r, rev, err := c.read(ctx, id)
	switch {
	case err != nil:
	case rev == 0:
		c.tell(id, Outcome{Result: TimedOut})
	case r.Outcome != nil:
		c.tell(id, *r.Outcome)
	}
}

// tell hands o to every waiter of id, once.
func (c *Cluster) tell(id string, o Outcome) {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	for w := range c.waiters[id] {
		w <- o
	}
	delete(c.waiters, id)
}

// watchApprovals follows every approval's key until ctx ends, and wakes
// the waiters of those decided or gone. Whenever it (re)starts without a
// revision to resume from (at first, after history was compacted), it
// learns the current revision, reads every approval waited for, and
// watches from just after that revision, so that no outcome falls in
// between. A watch that breaks (no leader, etcd out of reach) resumes.
func (c *Cluster) watchApprovals(ctx context.Context) {
	prefix := c.prefix + "approval/"
	var from int64
	for ctx.Err() == nil {
		if from == 0 {
			rctx, cancel := c.ctx()
			resp, err := c.cli.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			cancel()
			if err != nil {
				c.pause(ctx)
				continue
			}
			from = resp.Header.Revision + 1
			c.waitMu.Lock()
			ids := make([]string, 0, len(c.waiters))
			for id := range c.waiters {
				ids = append(ids, id)
			}
			c.waitMu.Unlock()
			for _, id := range ids {
				c.check(id)
			}
		}
		for resp := range c.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(from)) {
			if err := resp.Err(); err != nil {
				c.log().Warn("approval watch broke; starting it again", "err", err)
				if resp.CompactRevision != 0 {
					from = 0
				}
				break
			}
			for _, ev := range resp.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), prefix)
				if ev.Type == clientv3.EventTypeDelete {
					c.tell(id, Outcome{Result: TimedOut})
					continue
				}
				var r record
				if json.Unmarshal(ev.Kv.Value, &r) == nil && r.Outcome != nil {
					c.tell(id, *r.Outcome)
				}
			}
			if !resp.IsProgressNotify() && len(resp.Events) > 0 {
				from = resp.Events[len(resp.Events)-1].Kv.ModRevision + 1
			}
		}
		c.pause(ctx)
	}
}

// pause waits a second, or until ctx ends.
func (c *Cluster) pause(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// The sessions of the user's own web pages (web.Sessions), so that any
// node serves any request of a browser:
//
//	live/session/<id>           a session, sealed by the web server
//	live/sessionof/<user>/<id>  empty: the sessions of a user, to end them all
//
// Both under a lease that ends after the session does.

func (c *Cluster) sessionKey(id [32]byte) string {
	return c.prefix + "session/" + hex.EncodeToString(id[:])
}

func (c *Cluster) sessionsOf(user string) string { return c.prefix + "sessionof/" + hash(user) + "/" }

// PutSession implements web.Sessions.
func (c *Cluster) PutSession(id [32]byte, user string, data []byte, expires time.Time) error {
	k := c.sessionKey(id)
	err := c.again(func(ctx context.Context) error {
		_, err := c.withLease(ctx, expires, func(l clientv3.LeaseID) (*clientv3.TxnResponse, error) {
			return c.cli.Txn(ctx).Then(
				clientv3.OpPut(k, string(data), clientv3.WithLease(l)),
				clientv3.OpPut(c.sessionsOf(user)+hex.EncodeToString(id[:]), "", clientv3.WithLease(l)),
			).Commit()
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// Session implements web.Sessions.
func (c *Cluster) Session(id [32]byte) ([]byte, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.cli.Get(ctx, c.sessionKey(id))
	if err != nil {
		return nil, false, fmt.Errorf("read session: %w", err)
	}
	if len(resp.Kvs) != 1 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// DeleteSession implements web.Sessions. The user's index entry stays
// until its lease ends; ending the user's sessions skips what is gone.
func (c *Cluster) DeleteSession(id [32]byte) error {
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.cli.Delete(ctx, c.sessionKey(id)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// DeleteSessionsOf implements web.Sessions.
func (c *Cluster) DeleteSessionsOf(user string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	of := c.sessionsOf(user)
	resp, err := c.cli.Get(ctx, of, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("end the sessions of %s: %w", user, err)
	}
	ops := []clientv3.Op{clientv3.OpDelete(of, clientv3.WithPrefix())}
	for _, kv := range resp.Kvs {
		ops = append(ops, clientv3.OpDelete(c.prefix+"session/"+strings.TrimPrefix(string(kv.Key), of)))
		if len(ops) == 100 {
			if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				return fmt.Errorf("end the sessions of %s: %w", user, err)
			}
			ops = ops[:0]
		}
	}
	if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("end the sessions of %s: %w", user, err)
	}
	return nil
}
