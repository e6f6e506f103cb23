package live_test

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
)

var epoch = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// nodes are two nodes' views of the same challenges and approvals: the
// same Table and Holds twice in one process, or two Clusters with their
// own etcd clients.
type nodes struct {
	a, b   live.Challenges
	ha, hb live.Approvals
}

// conformance runs the tests every implementation must pass (one suite,
// two backends, like a driver conformance test).
func conformance(t *testing.T, newNodes func(t *testing.T) nodes) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, nodes)
	}{
		{"TakeOnceByItsOwner", testTakeOnceByItsOwner},
		{"ConcurrentTakeGivesItToOne", testConcurrentTake},
		{"LiveIsTheNewestOfItsLogin", testLiveIsTheNewest},
		{"TakeLiveOnlyWhileAnswerable", testTakeLive},
		{"PutBackUnderANewState", testPutBack},
		{"EveryFieldKept", testEveryField},
		{"ApprovalDecidedOnce", testApprovalDecidedOnce},
		{"ApprovalSharedByItsLogin", testApprovalShared},
		{"ApprovalForgotten", testApprovalForgotten},
		{"ApprovalUnsent", testApprovalUnsent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newNodes(t)) })
	}
}

func TestTable(t *testing.T) {
	conformance(t, func(*testing.T) nodes {
		tab, holds := live.NewTable(), live.NewHolds()
		return nodes{tab, tab, holds, holds}
	})
}

func TestCluster(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	n := 0
	conformance(t, func(t *testing.T) nodes {
		n++
		prefix := fmt.Sprintf("/test%d/", n)
		a, b := live.NewCluster(etcd.Client(t), prefix), live.NewCluster(etcd.Client(t), prefix)
		t.Cleanup(a.Close)
		t.Cleanup(b.Close)
		return nodes{a, b, a, b}
	})
}

func testTakeOnceByItsOwner(t *testing.T, n nodes) {
	c := live.Challenge{ID: "s1", User: "alice", Client: "vpn", Method: "sms", Attempts: 2,
		EndUserIP: netip.MustParseAddr("192.0.2.7"), Expires: epoch.Add(time.Minute)}
	must(t, n.a.Put(&c))
	for _, wrong := range []struct{ user, client string }{{"bob", "vpn"}, {"alice", "citrix"}} {
		if _, err := n.b.Take("s1", wrong.user, wrong.client); !errors.Is(err, live.ErrMismatch) {
			t.Errorf("Take by %s at %s: got %v, want ErrMismatch", wrong.user, wrong.client, err)
		}
	}
	for _, bad := range []string{"", "s", "s1/", "s1/x", "x"} {
		if _, err := n.b.Take(bad, "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
			t.Errorf("Take(%q): got %v, want ErrNotFound", bad, err)
		}
	}
	got, err := n.b.Take("s1", "alice", "vpn")
	if err != nil || got.ID != "s1" || got.Attempts != 2 || got.Method != "sms" {
		t.Fatalf("Take: got %+v, %v, want the challenge", got, err)
	}
	if _, err := n.a.Take("s1", "alice", "vpn"); !taken(err) {
		t.Errorf("second Take: got %v, want ErrNotFound or ErrTaken", err)
	}
	if _, ok, err := n.a.Live("alice", "vpn", c.EndUserIP); ok || err != nil {
		t.Errorf("Live after Take: got %v, %v, want none", ok, err)
	}
	if l := n.a.Len(); l != 0 {
		t.Errorf("Len: got %d, want 0", l)
	}
}

// taken reports whether err refuses a State taken before: ErrNotFound, or
// in a cluster, within seconds of the taking, ErrTaken.
func taken(err error) bool {
	return errors.Is(err, live.ErrNotFound) || errors.Is(err, live.ErrTaken)
}

// testConcurrentTake takes the same State from both nodes at once, many
// times over: exactly one taker wins each time.
func testConcurrentTake(t *testing.T, n nodes) {
	for round := range 50 {
		id := fmt.Sprintf("s%d", round)
		must(t, n.a.Put(&live.Challenge{ID: id, User: "alice", Client: "vpn", Expires: epoch}))
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			node := n.a
			if i%2 == 1 {
				node = n.b
			}
			wg.Go(func() {
				_, err := node.Take(id, "alice", "vpn")
				switch {
				case err == nil:
					won.Add(1)
				case taken(err):
					lost.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if w, l := won.Load(), lost.Load(); w != 1 || l != 7 {
			t.Fatalf("round %d: got %d takers and %d refused, want 1 and 7", round, w, l)
		}
	}
}

func testLiveIsTheNewest(t *testing.T, n nodes) {
	ip := netip.MustParseAddr("192.0.2.7")
	first := live.Challenge{ID: "a1", User: "alice", Client: "vpn", EndUserIP: ip, Expires: epoch}
	must(t, n.a.Put(&first))
	// A v4-mapped address is the same end-user IP.
	if got, ok, err := n.b.Live("alice", "vpn", netip.MustParseAddr("::ffff:192.0.2.7")); !ok || err != nil || got.ID != "a1" {
		t.Errorf("Live: got %q, %v, %v, want a1", got.ID, ok, err)
	}
	for _, other := range []struct {
		user, client string
		ip           netip.Addr
	}{{"bob", "vpn", ip}, {"alice", "citrix", ip}, {"alice", "vpn", netip.MustParseAddr("192.0.2.8")}, {"alice", "vpn", netip.Addr{}}} {
		if got, ok, err := n.b.Live(other.user, other.client, other.ip); ok || err != nil {
			t.Errorf("Live(%s, %s, %s): got %q, %v, want none", other.user, other.client, other.ip, got.ID, err)
		}
	}
	second := first
	second.ID = "b2"
	must(t, n.b.Put(&second))
	if _, err := n.a.Take("a1", "alice", "vpn"); err != nil { // the older one going leaves the newer live
		t.Fatal(err)
	}
	if got, ok, err := n.a.Live("alice", "vpn", ip); !ok || err != nil || got.ID != "b2" {
		t.Errorf("Live after replacing: got %q, %v, %v, want b2", got.ID, ok, err)
	}
	if _, err := n.b.Take("b2", "alice", "vpn"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := n.a.Live("alice", "vpn", ip); ok || err != nil {
		t.Errorf("Live after take: got %v, %v, want none", ok, err)
	}
}

func testTakeLive(t *testing.T, n nodes) {
	ip := netip.MustParseAddr("2001:db8::7")
	must(t, n.a.Put(&live.Challenge{ID: "x", User: "alice", Client: "vpn", EndUserIP: ip, Expires: epoch}))
	if _, ok, err := n.b.TakeLive("alice", "vpn", ip, epoch.Add(-time.Second)); !ok || err != nil {
		t.Fatalf("TakeLive before expiry: got %v, %v, want it", ok, err)
	}
	if _, ok, err := n.a.TakeLive("alice", "vpn", ip, epoch.Add(-time.Second)); ok || err != nil {
		t.Errorf("second TakeLive: got %v, %v, want none", ok, err)
	}
	must(t, n.a.Put(&live.Challenge{ID: "y", User: "alice", Client: "vpn", EndUserIP: ip, Expires: epoch}))
	if _, ok, err := n.b.TakeLive("alice", "vpn", ip, epoch); ok || err != nil {
		t.Errorf("TakeLive at expiry: got %v, %v, want none", ok, err)
	}
}

// testPutBack is a wrong answer at B to A's challenge: taken, then put
// back under a new State, answerable at A; the old State is spent.
func testPutBack(t *testing.T, n nodes) {
	ip := netip.MustParseAddr("192.0.2.9")
	must(t, n.a.Put(&live.Challenge{ID: "old", User: "carol", Client: "vpn", Method: "sms", EndUserIP: ip, Expires: epoch.Add(time.Minute)}))
	ch, err := n.b.Take("old", "carol", "vpn")
	if err != nil {
		t.Fatal(err)
	}
	ch.ID, ch.Attempts = "new", ch.Attempts+1
	must(t, n.b.Put(&ch))
	if _, err := n.a.Take("old", "carol", "vpn"); !taken(err) {
		t.Errorf("old State: got %v, want ErrNotFound or ErrTaken", err)
	}
	if got, ok, err := n.a.Live("carol", "vpn", ip); !ok || err != nil || got.ID != "new" {
		t.Errorf("Live: got %q, %v, %v, want new", got.ID, ok, err)
	}
	got, err := n.a.Take("new", "carol", "vpn")
	if err != nil || got.Attempts != 1 {
		t.Errorf("new State: got %+v, %v, want one attempt", got, err)
	}
}

func testEveryField(t *testing.T, n nodes) {
	c := live.Challenge{ID: "f", User: "dave", Client: "vpn", Method: "voice", CodeHash: []byte{1, 2, 3},
		Salt: "salt", Destination: "+31 6 *** 78", EndUserIP: netip.MustParseAddr("2001:db8::1"), Attempts: 1,
		Sent: epoch, Enrol: "phone", To: "+31612345678", NextStep: 99, NextDrift: -2, NoFirstFactor: true,
		Expires: epoch.Add(time.Minute)}
	must(t, n.a.Put(&c))
	got, err := n.b.Take("f", "dave", "vpn")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(c) || !got.Expires.Equal(c.Expires) || !got.Sent.Equal(c.Sent) {
		t.Errorf("got %+v, want %+v", got, c)
	}
}

func approval(token string) live.Approval {
	return live.Approval{Token: token, User: "hank", Tenant: "acme", Lang: "nl", Client: "rdgw",
		IP: netip.MustParseAddr("192.0.2.50"), Machine: "LAPTOP-7", Created: epoch, Expires: epoch.Add(time.Minute)}
}

// outcome waits for what w receives.
func outcome(t *testing.T, w <-chan live.Outcome) live.Outcome {
	t.Helper()
	select {
	case o := <-w:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome within 10 s")
	}
	return live.Outcome{}
}

func testApprovalDecidedOnce(t *testing.T, n nodes) {
	a, fresh, err := n.ha.Hold("hank/rdgw/192.0.2.50", approval("tok1"), epoch)
	if err != nil || !fresh || a.ID != live.TokenID("tok1") {
		t.Fatalf("Hold: got %+v, %v, %v, want a fresh hold", a, fresh, err)
	}
	w, stop := n.ha.Wait(a.ID)
	defer stop()
	// The link is clicked on the other node's page.
	got, ok, err := n.hb.Lookup("tok1", epoch.Add(time.Second))
	if !ok || err != nil || got.User != "hank" || got.Machine != "LAPTOP-7" || got.IP != a.IP || got.Token != "tok1" || !got.Created.Equal(epoch) {
		t.Fatalf("Lookup: got %+v, %v, %v, want hank's login", got, ok, err)
	}
	if _, ok, _ := n.hb.Lookup("tok2", epoch); ok {
		t.Error("Lookup of another token: got one")
	}
	if _, ok, _ := n.hb.Lookup("tok1", epoch.Add(time.Minute)); ok {
		t.Error("Lookup at expiry: got one")
	}
	if err := n.hb.Decide("tok1", live.Outcome{Result: live.Approved}, epoch.Add(time.Minute)); !errors.Is(err, live.ErrGone) {
		t.Errorf("Decide at expiry: got %v, want ErrGone", err)
	}
	// Clicked on both nodes at once: one click decides.
	var decided atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		h, res := n.ha, live.Approved
		if i%2 == 1 {
			h, res = n.hb, live.Denied
		}
		wg.Go(func() {
			err := h.Decide("tok1", live.Outcome{Result: res}, epoch.Add(time.Second))
			switch {
			case err == nil:
				decided.Add(1)
			case !errors.Is(err, live.ErrGone):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := decided.Load(); d != 1 {
		t.Errorf("got %d clicks deciding, want 1", d)
	}
	o := outcome(t, w)
	if o.Result != live.Approved && o.Result != live.Denied {
		t.Errorf("got outcome %+v, want approved or denied", o)
	}
	if _, ok, _ := n.ha.Lookup("tok1", epoch.Add(time.Second)); ok {
		t.Error("Lookup after the decision: got one")
	}
	// Waiting after the decision hears it at once.
	w2, stop2 := n.hb.Wait(a.ID)
	defer stop2()
	if o2 := outcome(t, w2); o2 != o {
		t.Errorf("late waiter: got %+v, want %+v", o2, o)
	}
}

func testApprovalShared(t *testing.T, n nodes) {
	key := "hank/rdgw/192.0.2.50"
	a, fresh, err := n.ha.Hold(key, approval("tokA"), epoch)
	if err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	// The same login at the other node shares the link.
	b, fresh, err := n.hb.Hold(key, approval("tokB"), epoch.Add(time.Second))
	if err != nil || fresh || b.ID != a.ID || b.Token != "" && b.Token != "tokA" {
		t.Fatalf("second Hold: got %+v, %v, %v, want the first's", b, fresh, err)
	}
	// Another place gets its own.
	c, fresh, err := n.hb.Hold(key+"x", approval("tokC"), epoch)
	if err != nil || !fresh || c.ID == a.ID {
		t.Fatalf("Hold elsewhere: got %+v, %v, %v, want a fresh hold", c, fresh, err)
	}
	wa, stopA := n.ha.Wait(a.ID)
	defer stopA()
	wb, stopB := n.hb.Wait(b.ID)
	defer stopB()
	must(t, n.hb.Decide("tokA", live.Outcome{Result: live.Denied}, epoch.Add(time.Second)))
	for _, w := range []<-chan live.Outcome{wa, wb} {
		if o := outcome(t, w); o.Result != live.Denied {
			t.Errorf("got %+v, want denied", o)
		}
	}
	// Decided, the login is held anew with a new link.
	d, fresh, err := n.hb.Hold(key, approval("tokD"), epoch.Add(2*time.Second))
	if err != nil || !fresh || d.ID != live.TokenID("tokD") {
		t.Errorf("Hold after the decision: got %+v, %v, %v, want a fresh hold", d, fresh, err)
	}
	// And after the hold expired.
	e, fresh, err := n.ha.Hold(key, approval("tokE"), epoch.Add(time.Minute))
	if err != nil || !fresh || e.ID != live.TokenID("tokE") {
		t.Errorf("Hold after expiry: got %+v, %v, %v, want a fresh hold", e, fresh, err)
	}
}

func testApprovalForgotten(t *testing.T, n nodes) {
	a, _, err := n.ha.Hold("k", approval("tokF"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	w, stop := n.hb.Wait(a.ID)
	defer stop()
	must(t, n.ha.Forget(a.ID))
	if o := outcome(t, w); o.Result != live.TimedOut {
		t.Errorf("got %+v, want timeout", o)
	}
	if _, ok, _ := n.hb.Lookup("tokF", epoch); ok {
		t.Error("the link of a forgotten hold still shows")
	}
	if err := n.hb.Decide("tokF", live.Outcome{Result: live.Approved}, epoch); !errors.Is(err, live.ErrGone) {
		t.Errorf("Decide after Forget: got %v, want ErrGone", err)
	}
	must(t, n.hb.Forget(a.ID)) // twice is no error
	must(t, n.hb.Forget("never"))
}

func testApprovalUnsent(t *testing.T, n nodes) {
	a, _, err := n.ha.Hold("k", approval("tokU"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := n.hb.Hold("k", approval("tokV"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	w, stop := n.hb.Wait(b.ID)
	defer stop()
	why := live.Outcome{Result: "delivery_failed", Message: "The code could not be sent."}
	must(t, n.ha.Decide(a.Token, why, epoch))
	if o := outcome(t, w); o != why {
		t.Errorf("got %+v, want %+v", o, why)
	}
}

// TestTableSingleNode is what only the in-memory table does: pruning.
func TestTableSingleNode(t *testing.T) {
	tab := live.NewTable()
	ip := netip.MustParseAddr("192.0.2.1")
	want := map[string]bool{}
	for i := range 1000 {
		id := string(rune('a'+i%26)) + time.Duration(i).String()
		var expires time.Time
		switch i % 3 {
		case 0:
			expires = epoch.Add(-time.Duration(i+1) * time.Second) // expired
		case 1:
			expires = epoch // expires now: not yet before now
		default:
			expires = epoch.Add(time.Minute)
		}
		want[id] = !expires.Before(epoch)
		must(t, tab.Put(&live.Challenge{ID: id, User: "u" + id, Client: "vpn", EndUserIP: ip, Expires: expires}))
	}
	removed := 0
	for _, keep := range want {
		if !keep {
			removed++
		}
	}
	if n := tab.Prune(epoch); n != removed {
		t.Errorf("Prune: got %d removed, want %d", n, removed)
	}
	for id, keep := range want {
		_, ok := tab.Get(id)
		if ok != keep {
			t.Errorf("%s: got present %v, want %v", id, ok, keep)
		}
		if _, live, _ := tab.Live("u"+id, "vpn", ip); live != keep {
			t.Errorf("%s: got live %v, want %v", id, live, keep)
		}
	}
	if n := tab.Prune(epoch); n != 0 {
		t.Errorf("second Prune: got %d, want 0", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
