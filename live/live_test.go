package live_test

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/live"
)

var epoch = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func TestTakeOnceByItsOwner(t *testing.T) {
	tab := live.NewTable()
	c := live.Challenge{ID: "s1", User: "alice", Client: "vpn", Method: "sms", Attempts: 2,
		EndUserIP: netip.MustParseAddr("192.0.2.7"), Expires: epoch.Add(time.Minute)}
	tab.Put(c)
	for _, wrong := range []struct{ user, client string }{{"bob", "vpn"}, {"alice", "citrix"}} {
		if _, err := tab.Take("s1", wrong.user, wrong.client); !errors.Is(err, live.ErrMismatch) {
			t.Errorf("Take by %s at %s: got %v, want ErrMismatch", wrong.user, wrong.client, err)
		}
	}
	got, err := tab.Take("s1", "alice", "vpn")
	if err != nil || got.ID != "s1" || got.Attempts != 2 || got.Method != "sms" {
		t.Fatalf("Take: got %+v, %v, want the challenge", got, err)
	}
	if _, err := tab.Take("s1", "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
		t.Errorf("second Take: got %v, want ErrNotFound", err)
	}
	if _, ok := tab.Live("alice", "vpn", c.EndUserIP); ok {
		t.Error("Live after Take: got a challenge, want none")
	}
	if n := tab.Len(); n != 0 {
		t.Errorf("Len: got %d, want 0", n)
	}
}

func TestConcurrentTakeGivesItToOne(t *testing.T) {
	tab := live.NewTable()
	tab.Put(live.Challenge{ID: "s", User: "alice", Client: "vpn", Expires: epoch})
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := tab.Take("s", "alice", "vpn"); err == nil {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Errorf("got %d takers, want 1", n)
	}
}

func TestLiveIsTheNewestOfItsLogin(t *testing.T) {
	tab := live.NewTable()
	ip := netip.MustParseAddr("192.0.2.7")
	first := live.Challenge{ID: "a1", User: "alice", Client: "vpn", EndUserIP: ip, Expires: epoch}
	tab.Put(first)
	// A v4-mapped address is the same end-user IP.
	if got, ok := tab.Live("alice", "vpn", netip.MustParseAddr("::ffff:192.0.2.7")); !ok || got.ID != "a1" {
		t.Errorf("Live: got %q, %v, want a1", got.ID, ok)
	}
	for _, other := range []struct {
		user, client string
		ip           netip.Addr
	}{{"bob", "vpn", ip}, {"alice", "citrix", ip}, {"alice", "vpn", netip.MustParseAddr("192.0.2.8")}, {"alice", "vpn", netip.Addr{}}} {
		if got, ok := tab.Live(other.user, other.client, other.ip); ok {
			t.Errorf("Live(%s, %s, %s): got %q, want none", other.user, other.client, other.ip, got.ID)
		}
	}
	second := first
	second.ID = "b2"
	tab.Put(second)
	tab.Delete("a1") // the older one going leaves the newer live
	if got, ok := tab.Live("alice", "vpn", ip); !ok || got.ID != "b2" {
		t.Errorf("Live after replacing: got %q, %v, want b2", got.ID, ok)
	}
	tab.Delete("b2")
	tab.Delete("never")
	if _, ok := tab.Live("alice", "vpn", ip); ok {
		t.Error("Live after delete: got a challenge, want none")
	}
}

func TestTakeLiveOnlyWhileAnswerable(t *testing.T) {
	tab := live.NewTable()
	ip := netip.MustParseAddr("2001:db8::7")
	tab.Put(live.Challenge{ID: "x", User: "alice", Client: "vpn", EndUserIP: ip, Expires: epoch})
	if _, ok := tab.TakeLive("alice", "vpn", ip, epoch); ok {
		t.Error("TakeLive at expiry: got it, want none")
	}
	if got, ok := tab.TakeLive("alice", "vpn", ip, epoch.Add(-time.Second)); !ok || got.ID != "x" {
		t.Fatalf("TakeLive before expiry: got %q, %v, want x", got.ID, ok)
	}
	if _, ok := tab.TakeLive("alice", "vpn", ip, epoch.Add(-time.Second)); ok {
		t.Error("second TakeLive: got it, want none")
	}
}

func TestPrune(t *testing.T) {
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
		tab.Put(live.Challenge{ID: id, User: "u" + id, Client: "vpn", EndUserIP: ip, Expires: expires})
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
		if _, live := tab.Live("u"+id, "vpn", ip); live != keep {
			t.Errorf("%s: got live %v, want %v", id, live, keep)
		}
	}
	if n := tab.Prune(epoch); n != 0 {
		t.Errorf("second Prune: got %d, want 0", n)
	}
}
