package policy_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// etcdEngine is a fixture whose engine keeps its store and its live state
// in one real etcd, as a cluster node does (the fixture's own users are in
// its bbolt file, not there: add them with put).
func etcdEngine(t *testing.T, with ...func(*policy.Config)) (f *fixture, etcd *etcdtest.Cluster, db *store.DB) {
	t.Helper()
	etcd = etcdtest.Start(t, 3)
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{
		Node: "a",
		Etcd: &store.Etcd{Endpoints: etcd.Endpoints(), Prefix: "/otpgate/", RequestTimeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f = newFixture(t, append(with, func(c *policy.Config) {
		node := live.NewCluster(etcd.Client(t), "/otpgate/")
		node.Key, node.Now = c.Key, c.Now
		t.Cleanup(node.Close)
		c.Store, c.Challenges, c.Approvals = db, node, node
	})...)
	return f, etcd, db
}

// txns is how many transactions (Txn requests) the etcd members have
// answered, as their metrics count them.
func txns(t *testing.T, etcd *etcdtest.Cluster) int {
	t.Helper()
	read := func() int {
		n := 0
		for _, m := range etcd.Members {
			resp, err := http.Get(m.Client + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				l := sc.Text()
				if strings.HasPrefix(l, "grpc_server_handled_total{") && strings.Contains(l, `grpc_method="Txn"`) {
					v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
					if err != nil {
						t.Fatal(err)
					}
					n += int(v)
				}
			}
			resp.Body.Close()
		}
		return n
	}
	// A member counts a request before it answers it: what a decision
	// asked is counted when Decide returns.
	return read()
}

// TestSignInUnknownNameCostsTheSame: on the sign-in page without a first
// factor every name is asked the same question, and a wrong answer must
// cost the same for a name otpgate knows as for one it does not, or the
// time of the answer tells which names are users. In a cluster, a known
// name's wrong code went through prove, whose CommitIf (nothing to write)
// still asks etcd whether the user changed meanwhile: one more round trip
// to etcd than the decoy judging of an unknown (or locked) name, which
// asked etcd nothing after its claim and its counted try. (alice has an
// app, bob only SMS, carl is locked out: judged as unknown.)
func TestSignInUnknownNameCostsTheSame(t *testing.T) {
	f, etcd, db := etcdEngine(t)
	err := db.Update(func(tx *store.Tx) error {
		for _, u := range []store.User{
			f.totpUser(store.User{Name: "alice", Tenant: "acme", Method: policy.MethodTOTP}),
			{Name: "bob", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31612345678"},
			f.totpUser(store.User{Name: "carl", Tenant: "acme", Method: policy.MethodTOTP, LockedUntil: f.now.Add(time.Hour)}),
		} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wrong := f.wrongCode()
	cost := func(name string, i int) int {
		ip := netip.AddrFrom4([4]byte{10, 9, byte(i), 1})
		q := f.engine.Decide(ctx, signIn(name, policy.FirstFactorNone, "", ip))
		if q.Decision != policy.Challenge || !strings.HasPrefix(q.State, "s") {
			t.Fatalf("%s: got %s (%s) %q, want a question under a sealed State", name, q.Decision, q.Reason, q.State)
		}
		before := txns(t, etcd)
		r := signIn(name, policy.FirstFactorNone, "", ip)
		r.State, r.Password = q.State, wrong
		res := f.engine.Decide(ctx, r)
		if res.Decision != policy.Challenge {
			t.Fatalf("%s: got %s (%s), want another try", name, res.Decision, res.Reason)
		}
		return txns(t, etcd) - before
	}
	got := map[string][]int{}
	for i := range 3 {
		for _, name := range []string{"alice", "bob", "carl", "nobody", "zed"} {
			got[name] = append(got[name], cost(name, i))
		}
	}
	want := fmt.Sprint(got["nobody"])
	for _, n := range got {
		if fmt.Sprint(n) != want {
			t.Errorf("etcd transactions of a wrong code on the sign-in page: %v; want the same for every name", got)
			break
		}
	}
}

// TestSealedLockedAnswersRenewNothing: answers to a sealed State while its
// user is locked out are neither judged nor claimed (the State stays, as a
// record put back did), and re-issue nothing: after the unlock the State
// has the tries it had, not more, and answers once. (With the in-memory
// table the locked answer used the State up; in a cluster it is left, but
// whoever holds it could as well have waited: nothing is gained.)
func TestSealedLockedAnswersRenewNothing(t *testing.T) {
	f, a, b := sealedNodes(t)
	ctx := context.Background()
	f.addUsers(f.totpUser(store.User{Name: "lena", Tenant: "acme", Method: policy.MethodTOTP}))
	lock := func(until time.Time) {
		t.Helper()
		err := f.db.Update(func(tx *store.Tx) error {
			u, err := tx.User("lena")
			if err != nil {
				return err
			}
			u.LockedUntil = until
			return tx.PutUser(u)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wrong := f.wrongCode()
	res := a.Decide(ctx, login("lena", ipX))
	sealedChallenge(t, "login", res, "challenge")
	r1 := b.Decide(ctx, answer("lena", res.State, wrong, ipX))
	sealedChallenge(t, "first wrong code", r1, "wrong_code")
	lock(f.now.Add(time.Hour))
	for i := range 20 {
		for _, word := range []string{wrong, f.code(), "resend", "sms"} {
			r := []*policy.Engine{a, b}[i%2].Decide(ctx, answer("lena", r1.State, word, ipX))
			if r.Decision != policy.Reject || r.Reason != "locked" || r.State != "" {
				t.Fatalf("answer %q while locked: got %s (%s) State %q, want locked and no State", word, r.Decision, r.Reason, r.State)
			}
		}
	}
	lock(time.Time{})
	r2 := a.Decide(ctx, answer("lena", r1.State, wrong, ipX))
	if r2.Decision != policy.Challenge || !strings.Contains(r2.Message, "1 try left") {
		t.Fatalf("after the unlock: got %s (%s) %q, want a challenge with 1 try left", r2.Decision, r2.Reason, r2.Message)
	}
	for _, node := range []*policy.Engine{a, b} {
		if r := node.Decide(ctx, answer("lena", r1.State, f.code(), ipX)); r.Reason != "unknown_state" {
			t.Errorf("the State answered after the unlock, again: got %s (%s), want unknown_state", r.Decision, r.Reason)
		}
	}
	if r := b.Decide(ctx, answer("lena", r2.State, wrong, ipX)); r.Reason != "wrong_code_final" {
		t.Errorf("last try: got %s (%s), want wrong_code_final", r.Decision, r.Reason)
	}
}

// etcdNodes are two engines each with its own store on one etcd (the
// same prefix, each node its own client, copy and batcher) and its own
// live state there: a cluster as deployed, not the tests' shared bbolt
// store, so that a sealed State's claim is the etcd key compared in the
// commit. The fixture's users are added to the etcd store.
func etcdNodes(t *testing.T) (f *fixture, a, b *policy.Engine) {
	t.Helper()
	etcd := etcdtest.Start(t, 3)
	open := func(node string) *store.DB {
		db, err := store.Open(filepath.Join(t.TempDir(), node+".db"), store.Options{
			Node: node,
			Etcd: &store.Etcd{Endpoints: etcd.Endpoints(), Prefix: "/otpgate/", RequestTimeout: 5 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbA, dbB := open("a"), open("b")
	var cfg policy.Config
	f = newFixture(t, func(c *policy.Config) {
		node := live.NewCluster(etcd.Client(t), "/otpgate/")
		node.Key, node.Now = c.Key, c.Now
		t.Cleanup(node.Close)
		c.Store, c.Challenges, c.Approvals = dbA, node, node
		cfg = *c
	})
	node := live.NewCluster(etcd.Client(t), "/otpgate/")
	node.Key, node.Now = cfg.Key, cfg.Now
	t.Cleanup(node.Close)
	cfg.Store, cfg.Challenges, cfg.Approvals = dbB, node, node
	err := dbA.Update(func(tx *store.Tx) error {
		return tx.PutUser(f.totpUser(store.User{Name: "alice", Tenant: "acme", Method: policy.MethodTOTP}))
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := dbB.ReadUser("alice"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B's copy never saw alice")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f, f.engine, policy.New(cfg)
}

// TestEtcdSealedStateTakenOnce: one sealed State answered at both nodes
// at once, each node's store on etcd: the right codes of the steps either
// side, the current one, a wrong one and "resend", two of each kind at
// each node. Exactly one answer takes the State (an Accept, another try or
// a resend); every other is refused as unknown.
func TestEtcdSealedStateTakenOnce(t *testing.T) {
	f, a, b := etcdNodes(t)
	ctx := context.Background()
	wrong := f.wrongCode()
	for round := range 30 {
		ip := netip.AddrFrom4([4]byte{10, 3, 0, byte(1 + round)})
		f.advance(3 * time.Minute) // past the steps used before
		ch := a.Decide(ctx, login("alice", ip))
		sealedChallenge(t, fmt.Sprintf("round %d: login", round), ch, "challenge")
		words := []string{f.codeAt(f.now.Add(-30 * time.Second)), f.codeAt(f.now.Add(30 * time.Second)), f.code(), wrong, "resend"}
		results := make([]policy.Result, 4*len(words))
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for i := range results {
			node, word := []*policy.Engine{a, b}[i%2], words[(i/2)%len(words)]
			wg.Go(func() {
				<-begin
				results[i] = node.Decide(ctx, answer("alice", ch.State, word, ip))
			})
		}
		close(begin)
		wg.Wait()
		taken, accepts := 0, 0
		for _, r := range results {
			switch {
			case refusedAsUsed(r):
			case r.Decision == policy.Accept:
				accepts++
				taken++
			case r.Decision == policy.Challenge:
				taken++
			default:
				t.Errorf("round %d: got %s (%s)", round, r.Decision, r.Reason)
			}
		}
		if taken != 1 || accepts > 1 {
			t.Fatalf("round %d: the State taken by %d answers (%d Accepts), want 1", round, taken, accepts)
		}
	}
}
