package live_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

func testKey(t *testing.T, b byte) *secret.Key {
	t.Helper()
	k, err := secret.New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealedNodes are two nodes of one cluster with the same key and a clock
// at *now, and the etcd client they share.
func sealedNodes(t *testing.T, etcd *etcdtest.Cluster, prefix string, now *time.Time) (a, b *live.Cluster, cli *clientv3.Client) {
	t.Helper()
	cli = etcd.Client(t)
	a, b = live.NewCluster(cli, prefix), live.NewCluster(etcd.Client(t), prefix)
	for _, n := range []*live.Cluster{a, b} {
		n.Key = testKey(t, 7)
		n.Now = func() time.Time { return *now }
		t.Cleanup(n.Close)
	}
	return a, b, cli
}

// keys counts the keys under prefix.
func keys(t *testing.T, cli *clientv3.Client, prefix string) int {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}

// TestClusterSealed: a challenge that sent nothing travels in its State,
// costs etcd nothing to ask, is answered at either node, once, by its
// owner only, and a State nobody sealed, changed, re-spelled, from
// another cluster or too old is unknown.
func TestClusterSealed(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	now := epoch
	a, b, cli := sealedNodes(t, etcd, "/sealed/", &now)
	ip := netip.MustParseAddr("2001:db8::7")
	c := live.Challenge{ID: "0123abcd", User: "alice", Client: "vpn", Method: "totp", Enrol: "link",
		EndUserIP: ip, Attempts: 2, NextDrift: -3, NoFirstFactor: true,
		Expires: epoch.Add(time.Minute)}
	asked := c
	must(t, a.Put(&asked))
	if !strings.HasPrefix(asked.ID, "s") || len(asked.ID) > 253 {
		t.Fatalf("State %q: want a sealed one of at most 253 bytes", asked.ID)
	}
	if n := keys(t, cli, "/sealed/"); n != 0 {
		t.Errorf("asking wrote %d keys to etcd, want none", n)
	}
	if _, ok, _ := b.Live("alice", "vpn", ip); ok {
		t.Error("Live found a sealed challenge; it keeps no record")
	}
	if got, ok := b.Get(asked.ID); !ok || got.Method != "totp" || !got.Expires.Equal(c.Expires) {
		t.Errorf("Get: got %+v, %v", got, ok)
	}

	for _, wrong := range []struct{ user, client string }{{"bob", "vpn"}, {"alice", "citrix"}} {
		if _, err := b.Take(asked.ID, wrong.user, wrong.client); !errors.Is(err, live.ErrMismatch) {
			t.Errorf("Take by %s at %s: got %v, want ErrMismatch", wrong.user, wrong.client, err)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(asked.ID[1:])
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	other, _, _ := sealedNodes(t, etcd, "/sealed/", &now)
	other.Key = testKey(t, 8)
	otherKey := c
	must(t, other.Put(&otherKey))
	elsewhere, _, _ := sealedNodes(t, etcd, "/elsewhere/", &now)
	elsewhereState := c
	must(t, elsewhere.Put(&elsewhereState))
	for name, state := range map[string]string{
		"changed":          "s" + base64.RawURLEncoding.EncodeToString(flipped),
		"short":            asked.ID[:len(asked.ID)-4],
		"not base64":       "s" + strings.Repeat("!", 40),
		"another key":      otherKey.ID,
		"another cluster":  elsewhereState.ID,
		"re-spelled":       respell(t, asked.ID),
		"empty":            "s",
		"with a slash":     asked.ID + "/x",
		"record-like name": "s1",
	} {
		if _, err := b.Take(state, "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
			t.Errorf("Take of a State %s: got %v, want ErrNotFound", name, err)
		}
	}

	got, err := b.Take(asked.ID, "alice", "vpn")
	if err != nil {
		t.Fatal(err)
	}
	claim := got.Claim
	want := c
	want.ID = asked.ID
	got.Claim = store.Claim{}
	if fmt.Sprint(got) != fmt.Sprint(want) || !got.Expires.Equal(want.Expires) {
		t.Errorf("Take: got %+v, want %+v", got, want)
	}
	if claim.ID == "" || !claim.Until.After(c.Expires) {
		t.Errorf("Take: got claim %+v, want one kept past the expiry", claim)
	}
	// Taking writes nothing: each taker gets the same claim, which the
	// store lets one of them make (TestSealedClaimedOnce).
	again, err := a.Take(asked.ID, "alice", "vpn")
	if err != nil || again.Claim != claim {
		t.Errorf("second Take: got %+v, %v, want the same claim", again.Claim, err)
	}
	if n := keys(t, cli, "/sealed/"); n != 0 {
		t.Errorf("taking wrote %d keys to etcd, want none", n)
	}
	other2 := c
	must(t, a.Put(&other2))
	if o, err := a.Take(other2.ID, "alice", "vpn"); err != nil || o.Claim.ID == claim.ID {
		t.Errorf("another State of the same challenge: got claim %+v, %v, want a claim of its own", o.Claim, err)
	}

	// Too old to be told apart from one whose marker has gone.
	late := c
	must(t, a.Put(&late))
	now = c.Expires.Add(time.Hour)
	if _, err := b.Take(late.ID, "alice", "vpn"); !errors.Is(err, live.ErrNotFound) {
		t.Errorf("Take an hour after expiry: got %v, want ErrNotFound", err)
	}
	now = epoch

	// What sent a code, carries a first factor's attributes or waits for
	// the code after a far one keeps its record, found by Live.
	for _, rec := range []live.Challenge{
		{ID: "1111", User: "bob", Client: "vpn", Method: "sms", CodeHash: []byte{1}, Salt: "s", EndUserIP: ip, Expires: c.Expires},
		{ID: "2222", User: "carol", Client: "vpn", Method: "totp", EndUserIP: ip, Expires: c.Expires,
			Reply: []dictionary.Attribute{{Key: dictionary.Key{Type: 11}, Value: []byte("staff")}}},
		// Waits for the code after a far one: the next login at a gateway
		// that cannot prompt finds it (TakeLive).
		{ID: "3333", User: "dan", Client: "vpn", Method: "totp", EndUserIP: ip, Expires: c.Expires,
			NextStep: 59000001, NextDrift: -3},
	} {
		put := rec
		must(t, a.Put(&put))
		if put.ID != rec.ID {
			t.Errorf("%s's challenge: got State %q, want its record's ID", rec.User, put.ID)
		}
		if got, ok, err := b.Live(rec.User, "vpn", ip); !ok || err != nil || got.ID != rec.ID {
			t.Errorf("Live(%s): got %q, %v, %v", rec.User, got.ID, ok, err)
		}
	}
}

// respell writes the same bytes another way, where base64 allows it: the
// unused low bits of the last character set.
func respell(t *testing.T, state string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	body := state[1:]
	if len(body)%4 == 0 {
		t.Fatalf("State %q has no spare bits to set", state)
	}
	last := strings.IndexByte(alphabet, body[len(body)-1])
	return "s" + body[:len(body)-1] + string(alphabet[last|1])
}

// TestSealedClaimedOnce takes one sealed State at both nodes at once and
// claims it in an etcd store, fifty times: exactly one claim each time,
// and the others told it was claimed.
func TestSealedClaimedOnce(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	now := epoch
	a, b, _ := sealedNodes(t, etcd, "/once/", &now)
	var dbs []*store.DB
	for range 2 {
		db, err := store.Open(filepath.Join(t.TempDir(), "otpgate.db"), store.Options{Etcd: &store.Etcd{Endpoints: etcd.Endpoints(), Prefix: "/once-store/"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	for round := range 50 {
		c := live.Challenge{ID: "ab", User: "alice", Client: "vpn", Method: "totp", Expires: time.Now().Add(time.Minute)}
		must(t, a.Put(&c))
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			node, db := a, dbs[0]
			if i%2 == 1 {
				node, db = b, dbs[1]
			}
			wg.Go(func() {
				ch, err := node.Take(c.ID, "alice", "vpn")
				if err != nil {
					t.Error(err)
					return
				}
				err = db.Update(func(tx *store.Tx) error { return tx.Claim(ch.Claim) })
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
		if w, l := won.Load(), lost.Load(); w != 1 || l != 7 {
			t.Fatalf("round %d: got %d claims and %d refused, want 1 and 7", round, w, l)
		}
	}
}
