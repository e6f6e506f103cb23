package store_test

// The store's conformance suite: every test here runs against each
// engine, bbolt and etcd (a real etcd, see package etcdtest), through
// the same API, like a database/sql driver's conformance tests. With
// etcd, "another node" is a second store opened on the same prefix, with
// its own file for its audit log; with bbolt it is the same store.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.StopShared()
	os.Exit(code)
}

// engine opens stores of one kind for a test.
type engine struct {
	name string
	// node opens the store as seen by node i of the test's cluster.
	node func(t *testing.T, i int) *store.DB
}

// engines returns bbolt and etcd. etcd is skipped where the binary is
// missing (and fails under CI).
func engines() []engine {
	return []engine{
		{name: "bbolt", node: func(t *testing.T, i int) *store.DB {
			t.Helper()
			if i > 0 {
				return nodeOf(t, 0)
			}
			db := open(t, tempPath(t))
			setNode(t, 0, db)
			return db
		}},
		{name: "etcd", node: func(t *testing.T, i int) *store.DB {
			t.Helper()
			if db := nodeOf(t, i); db != nil {
				return db
			}
			db := openEtcdNode(t, etcdtest.Shared(t), testPrefix(t), fmt.Sprintf("node%d", i))
			setNode(t, i, db)
			return db
		}},
	}
}

// testPrefix is a prefix no other test, nor another run of it, uses.
// Every node of a test shares it.
func testPrefix(t *testing.T) string {
	p := fmt.Sprintf("/test/%s/%d/", strings.ReplaceAll(t.Name(), "/", "-"), runs.Add(1))
	v, loaded := nodes.LoadOrStore("prefix "+t.Name(), p)
	if !loaded {
		t.Cleanup(func() { nodes.Delete("prefix " + t.Name()) })
	}
	return v.(string)
}

var runs atomic.Int64

func openEtcdNode(t *testing.T, endpoints []string, prefix, node string) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), node+".db"), store.Options{
		Node: node,
		Etcd: &store.Etcd{Endpoints: endpoints, Prefix: prefix, Retry: 20 * time.Millisecond, RequestTimeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatalf("Open on etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

var nodes sync.Map // test name and node number → *store.DB

func nodeOf(t *testing.T, i int) *store.DB {
	if v, ok := nodes.Load(fmt.Sprint(t.Name(), i)); ok {
		return v.(*store.DB)
	}
	return nil
}

func setNode(t *testing.T, i int, db *store.DB) {
	k := fmt.Sprint(t.Name(), i)
	nodes.Store(k, db)
	t.Cleanup(func() { nodes.Delete(k) })
}

// conform runs fn against each engine.
func conform(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

func TestConformUsers(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return errors.Join(
				tx.PutUser(store.User{Name: " Carol ", Tenant: "acme"}),
				tx.PutUser(store.User{Name: "alice", Phone: "+31612345678", HomeIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}),
				tx.PutUser(store.User{Name: "bob"}),
			)
		})
		if err := a.Update(func(tx *store.Tx) error { return tx.PutUser(store.User{Name: "  "}) }); err == nil {
			t.Error("PutUser with an empty name: got nil error")
		}
		caughtUp(t, b)
		mustView(t, b, func(tx *store.Tx) error {
			u, err := tx.User("ALICE")
			if err != nil || u.Phone != "+31612345678" || len(u.HomeIPs) != 1 {
				t.Errorf("User(ALICE) at the other node: got %+v, %v", u, err)
			}
			if _, err := tx.User("dave"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("User(dave): got %v, want ErrNotFound", err)
			}
			var names []string
			tx.Users(func(u store.User) error { names = append(names, u.Name); return nil })
			if got := strings.Join(names, ","); got != "alice,bob,carol" {
				t.Errorf("Users: got %s, want alice,bob,carol", got)
			}
			return nil
		})
		mustUpdate(t, b, func(tx *store.Tx) error {
			return errors.Join(tx.PutProven("alice", netip.MustParseAddr("192.0.2.7"), epoch), tx.DeleteUser("Alice"))
		})
		if err := a.Update(func(tx *store.Tx) error { return tx.DeleteUser("alice") }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeleteUser at the first node: got %v, want ErrNotFound", err)
		}
		caughtUp(t, a)
		mustView(t, a, func(tx *store.Tx) error {
			if _, ok := tx.Proven("alice", netip.MustParseAddr("192.0.2.7")); ok {
				t.Error("Proven after DeleteUser: got a time, want none")
			}
			return nil
		})
	})
}

func TestConformProvenAndPrune(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		ip := netip.MustParseAddr("::ffff:203.0.113.5")
		mustUpdate(t, a, func(tx *store.Tx) error {
			return errors.Join(
				tx.PutProven("alice", ip, epoch),
				tx.PutProven("bob", ip, epoch.Add(-2*time.Hour)),
				tx.PutPreapproved("alice", epoch.Add(5*time.Minute)),
				tx.RecordSend("user:alice", epoch),
				tx.RecordSend("user:bob", epoch.Add(-25*time.Hour)),
			)
		})
		caughtUp(t, b)
		mustView(t, b, func(tx *store.Tx) error {
			if at, ok := tx.Proven("ALICE", netip.MustParseAddr("203.0.113.5")); !ok || !at.Equal(epoch) {
				t.Errorf("Proven: got %v %v, want %v", at, ok, epoch)
			}
			if until, ok := tx.Preapproved("alice"); !ok || !until.Equal(epoch.Add(5*time.Minute)) {
				t.Errorf("Preapproved: got %v %v", until, ok)
			}
			return nil
		})
		n, err := b.Prune(epoch, epoch.Add(-time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("Prune: got (%d, %v), want (2, nil)", n, err)
		}
		caughtUp(t, a)
		mustView(t, a, func(tx *store.Tx) error {
			if _, ok := tx.Proven("bob", ip); ok {
				t.Error("bob's old proven IP survived Prune")
			}
			if _, ok := tx.Proven("alice", ip); !ok {
				t.Error("alice's proven IP was pruned")
			}
			if got := tx.CountSends("user:alice", epoch.Add(-time.Hour)); got != 1 {
				t.Errorf("alice's sends after Prune: got %d, want 1", got)
			}
			return nil
		})
	})
}

// TestConformCounts counts from many goroutines on two nodes at once:
// no count is lost, as the send limits and budgets need.
func TestConformCounts(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		dbs := []*store.DB{e.node(t, 0), e.node(t, 1)}
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				err := dbs[i%2].Update(func(tx *store.Tx) error {
					if err := tx.AddDayCount("budget:acme", epoch); err != nil {
						return err
					}
					return tx.RecordSend("user:alice", epoch.Add(time.Duration(i)*time.Second))
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, db := range dbs {
			caughtUp(t, db)
			mustView(t, db, func(tx *store.Tx) error {
				if got := tx.DayCount("budget:acme", epoch); got != n {
					t.Errorf("DayCount: got %d, want %d", got, n)
				}
				if got := tx.CountSends("user:alice", epoch.Add(-time.Second)); got != n {
					t.Errorf("CountSends: got %d, want %d", got, n)
				}
				return nil
			})
		}
	})
}

func TestConformUpdateErrorWritesNothing(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		db := e.node(t, 0)
		boom := errors.New("boom")
		err := db.Update(func(tx *store.Tx) error {
			if err := tx.PutUser(store.User{Name: "alice"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update: got %v, want boom", err)
		}
		if _, err := db.ReadUser("alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ReadUser after a failed Update: got %v, want ErrNotFound", err)
		}
	})
}

func TestConformMeta(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error { return tx.PutMeta("key_id", []byte("abc")) })
		caughtUp(t, b)
		mustView(t, b, func(tx *store.Tx) error {
			if got := string(tx.Meta("key_id")); got != "abc" {
				t.Errorf("Meta at the other node: got %q, want abc", got)
			}
			return nil
		})
	})
}

// TestConformCommitIf: a commit is made only while the user's record and
// their newest step are as read.
func TestConformCommitIf(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		r := waitRead(t, b, "alice", func(store.Read) bool { return true })
		if r.User.TOTP.LastStep != 10 {
			t.Fatalf("LastStep: got %d, want 10", r.User.TOTP.LastStep)
		}
		useStep := func(step int64) func(*store.Tx) error {
			return func(tx *store.Tx) error { return tx.UseStep("alice", step, epoch.Add(time.Hour)) }
		}
		if err := b.CommitIf(r, useStep(11)); err != nil {
			t.Fatalf("CommitIf unchanged: %v", err)
		}
		// The same read again: the step it saw is no longer the newest.
		if err := b.CommitIf(r, useStep(12)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf after a step was used: got %v, want ErrConflict", err)
		}
		if err := a.CommitIf(r, nil); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf(nil) at the other node after a step was used: got %v, want ErrConflict", err)
		}
		r = waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == 11 })
		mustUpdate(t, b, func(tx *store.Tx) error {
			u, err := tx.User("alice")
			if err != nil {
				return err
			}
			u.LockedUntil = epoch
			return tx.PutUser(u)
		})
		if err := a.CommitIf(r, useStep(12)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitIf after the record changed: got %v, want ErrConflict", err)
		}
		r, err := a.ReadUser("alice")
		if err != nil || !r.User.LockedUntil.Equal(epoch) {
			t.Fatalf("ReadUser after a conflict: got %+v, %v; want the lockout seen", r.User, err)
		}
		if err := a.CommitIf(r, nil); err != nil {
			t.Fatalf("CommitIf(nil) unchanged: %v", err)
		}
		if err := a.CommitIf(r, useStep(12)); err != nil {
			t.Fatalf("CommitIf on a fresh read: %v", err)
		}
	})
}

// TestConformClaim: a claim is made once across nodes, in the commit of
// what it goes with or on its own: a transaction that claims what was
// claimed fails with ErrClaimed and writes nothing, also when it commits
// only if a user is unchanged; many claims of one ID at two nodes at once
// give exactly one.
func TestConformClaim(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		r := waitRead(t, b, "alice", func(store.Read) bool { return true })
		until := time.Now().Add(time.Minute)
		claimAndStep := func(id string, step int64) func(*store.Tx) error {
			return func(tx *store.Tx) error {
				if err := tx.Claim(store.Claim{User: "alice", ID: id, Until: until}); err != nil {
					return err
				}
				return tx.UseStep("alice", step, epoch.Add(time.Hour))
			}
		}
		if err := b.CommitIf(r, claimAndStep("s1", 11)); err != nil {
			t.Fatalf("CommitIf with a new claim: %v", err)
		}
		r = waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == 11 })
		if err := a.CommitIf(r, claimAndStep("s1", 12)); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("CommitIf with a claim made at the other node: got %v, want ErrClaimed", err)
		}
		if err := a.Update(func(tx *store.Tx) error { return tx.Claim(store.Claim{User: "alice", ID: "s1", Until: until}) }); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("Update claiming it again: got %v, want ErrClaimed", err)
		}
		if got := a.UsedStep("alice"); got > 11 {
			t.Errorf("a refused claim wrote its step: newest step %d", got)
		}
		if err := a.Update(func(tx *store.Tx) error {
			return errors.Join(tx.Claim(store.Claim{User: "alice", ID: "s2", Until: until}), tx.Claim(store.Claim{User: "alice", ID: "s2", Until: until}))
		}); !errors.Is(err, store.ErrClaimed) {
			t.Fatalf("one ID claimed twice in a transaction: got %v, want ErrClaimed", err)
		}
		for round := range 20 {
			id := fmt.Sprintf("round%d", round)
			var won, lost atomic.Int32
			var wg sync.WaitGroup
			for i := range 6 {
				db := []*store.DB{a, b}[i%2]
				wg.Go(func() {
					err := db.Update(func(tx *store.Tx) error { return tx.Claim(store.Claim{User: "alice", ID: id, Until: until}) })
					switch {
					case err == nil:
						won.Add(1)
					case errors.Is(err, store.ErrClaimed):
						lost.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if w, l := won.Load(), lost.Load(); w != 1 || l != 5 {
				t.Fatalf("round %d: got %d claims and %d refused, want 1 and 5", round, w, l)
			}
		}
	})
}

// TestConformMarkSince: a claim or a step written by another node after a
// Mark is "since" it at this node, one written before (and seen) is not,
// and a node's own commit before the Mark is before it even while the
// watch has not brought it back; on one node (bbolt) nothing is since.
func TestConformMarkSince(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		a, b := e.node(t, 0), e.node(t, 1)
		mustUpdate(t, a, func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		until := time.Now().Add(time.Minute)
		claim := func(db *store.DB, id string, step int64) {
			t.Helper()
			mustUpdate(t, db, func(tx *store.Tx) error {
				return errors.Join(tx.Claim(store.Claim{User: "alice", ID: id, Until: until}), tx.UseStep("alice", step, epoch.Add(time.Hour)))
			})
		}
		// Before: claimed at b, seen at a, then a's mark.
		claim(b, "early", 11)
		waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == 11 })
		m := a.Mark()
		if used, since, err := a.Claimed(store.Claim{User: "alice", ID: "early"}, m); err != nil || !used || since {
			t.Fatalf("a claim seen before the mark: used %v since %v (%v), want used, not since", used, since, err)
		}
		// Since: claimed at b after a's mark.
		claim(b, "late", 12)
		r := waitRead(t, a, "alice", func(r store.Read) bool { return r.User.TOTP.LastStep == 12 })
		used, since, err := a.Claimed(store.Claim{User: "alice", ID: "late"}, m)
		if err != nil || !used || since != (e.name == "etcd") {
			t.Fatalf("a claim made after the mark: used %v since %v (%v), want used, since on etcd only", used, since, err)
		}
		if r.StepUsedAfter(m) != (e.name == "etcd") {
			t.Fatalf("the step used after the mark: since %v, want since on etcd only", r.StepUsedAfter(m))
		}
		// A node's own commit, then its mark at once: before.
		claim(a, "own", 13)
		m = a.Mark()
		r, err = a.ReadUser("alice")
		if err != nil {
			t.Fatal(err)
		}
		if used, since, err := a.Claimed(store.Claim{User: "alice", ID: "own"}, m); err != nil || !used || since || r.StepUsedAfter(m) {
			t.Fatalf("the node's own claim before its mark: used %v since %v step since %v (%v), want used, not since", used, since, r.StepUsedAfter(m), err)
		}
	})
}

// TestConformStepOnceAcrossNodes is the replay guard: many answers with
// the same TOTP step, at two nodes at once, each reading the user,
// judging, and committing if unchanged; exactly one is accepted.
func TestConformStepOnceAcrossNodes(t *testing.T) {
	conform(t, func(t *testing.T, e engine) {
		dbs := []*store.DB{e.node(t, 0), e.node(t, 1)}
		mustUpdate(t, dbs[0], func(tx *store.Tx) error {
			return tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}})
		})
		waitRead(t, dbs[1], "alice", func(store.Read) bool { return true })
		for round := range 5 {
			step := int64(100 + round)
			var accepted sync.Map
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 16 {
				wg.Go(func() {
					db := dbs[i%2]
					<-start
					for {
						r, err := db.ReadUser("alice")
						if err != nil {
							t.Error(err)
							return
						}
						if r.User.TOTP.LastStep >= step {
							return // judged a replay
						}
						err = db.CommitIf(r, func(tx *store.Tx) error { return tx.UseStep("alice", step, epoch.Add(time.Hour)) })
						if errors.Is(err, store.ErrConflict) {
							continue // judge again
						}
						if err != nil {
							t.Error(err)
							return
						}
						accepted.Store(i, true)
						return
					}
				})
			}
			close(start)
			wg.Wait()
			n := 0
			accepted.Range(func(any, any) bool { n++; return true })
			if n != 1 {
				t.Fatalf("round %d: got %d answers accepted for one step, want 1", round, n)
			}
		}
	})
}

// waitRead reads name at db until ok says it is as expected: another
// node's write reaches this node's copy through a watch. It waits for
// the condition, up to 10 s.
func waitRead(t *testing.T, db *store.DB, name string, ok func(store.Read) bool) store.Read {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := db.ReadUser(name)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadUser(%s): got %+v, %v; not as expected after 10 s", name, r.User, err)
		}
		time.Sleep(time.Millisecond) // a watch event from another process
	}
}

// caughtUp waits until db has seen every write made so far at any node.
func caughtUp(t *testing.T, db *store.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdBackupRunsAlone: otpgate backup on a node of a cluster writes a
// bbolt file that a single node runs from, with the users, the steps
// used, the proven IPs, the meta and this node's audit log.
func TestEtcdBackupRunsAlone(t *testing.T) {
	db := openEtcdNode(t, etcdtest.Shared(t), testPrefix(t), "a")
	ip := netip.MustParseAddr("192.0.2.7")
	mustUpdate(t, db, func(tx *store.Tx) error {
		return errors.Join(
			tx.PutUser(store.User{Name: "alice", TOTP: &store.TOTP{Sealed: []byte{1}, LastStep: 10}}),
			tx.UseStep("alice", 77, epoch.Add(time.Hour)),
			tx.PutProven("alice", ip, epoch),
			tx.PutMeta("key_id", []byte("k1")),
		)
	})
	if err := db.Audit(store.Entry{Time: epoch, User: "alice", Decision: "accept", Reason: "totp_ok"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if _, err := db.Backup(path); err != nil {
		t.Fatal(err)
	}
	alone := open(t, path)
	if got := alone.UsedStep("alice"); got != 77 {
		t.Errorf("UsedStep in the copy: got %d, want 77", got)
	}
	mustView(t, alone, func(tx *store.Tx) error {
		if _, err := tx.User("alice"); err != nil {
			t.Errorf("User in the copy: %v", err)
		}
		if _, ok := tx.Proven("alice", ip); !ok {
			t.Error("Proven in the copy: none")
		}
		if got := string(tx.Meta("key_id")); got != "k1" {
			t.Errorf("key_id in the copy: got %q, want k1", got)
		}
		es, err := tx.AuditLog(0, nil)
		if err != nil || len(es) != 1 || es[0].Node != "a" {
			t.Errorf("audit log in the copy: got %+v, %v; want one entry of node a", es, err)
		}
		return nil
	})
}
