package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/otpgate/otpgate/etcdtest"
)

// TestSignInGuardAcrossNodes: the sign-in page without a first factor
// asks any name for a code from an app, and stops guessing at a name
// after the tenant's lockout of wrong codes. In a cluster every node
// must stop it: a guesser who has used up the tries at A gets none at B.
func TestSignInGuardAcrossNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	clock := newClock()
	key := filepath.Join(t.TempDir(), "cluster.key")
	node := func(name string) *server {
		r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", name)
		port := freePort(t)
		return startServerAt(t, r.Replace(etcdNodeConfig)+fmt.Sprintf("web: {listen: \"127.0.0.1:%d\", public_url: \"http://127.0.0.1:%d\"}\n", port, port), clock.Now)
	}
	a, b := node("a"), node("b")
	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	waitFor(t, "B to see tom", func() bool { return shows(b, "tom", "totp: active") })

	guess := func(n *server) string {
		c := newCookieClient(t, "http://"+n.web)
		c.do("GET", "/signin", nil)
		c.post("/signin", "name", "tom")
		page := c.page
		if hidden(stateField, page) != "" {
			c.post("/signin", "code", "000000")
			page = c.page
		}
		clock.Advance(time.Minute) // past the page's limit per IP, which is not the point here
		return page
	}
	lockedText := "locked"
	for i := 0; i < 5 && !strings.Contains(guess(a), lockedText); i++ {
	}
	if !strings.Contains(guess(a), lockedText) {
		t.Fatalf("A never stops the guessing:\n%s", guess(a))
	}
	if page := guess(b); !strings.Contains(page, lockedText) {
		t.Errorf("A stopped guesses at tom, B takes more: each node a budget of its own")
	}
}

// TestFarCodeAcrossNodes: a code found further out than a step from the
// phone's drift is not accepted, and the answer ("your phone's clock
// seems off") tells whoever typed it that it is a code, so it is never
// accepted later when its step comes near (policy/answer.go verify, store.Tx.AddFarStep). At
// the node that said so it is not; at the other node it must not be
// either, or each guess at A is tried against the steps ahead too.
func TestFarCodeAcrossNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	clock := newClock()
	key := filepath.Join(t.TempDir(), "cluster.key")
	node := func(name string) *server {
		r := strings.NewReplacer("{{etcd}}", endpointList(etcd.Endpoints()), "{{key}}", key, "{{node}}", name)
		return startServerAt(t, r.Replace(etcdNodeConfig), clock.Now)
	}
	a, b := node("a"), node("b")
	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	waitFor(t, "B to see tom", func() bool { return shows(b, "tom", "totp: active") })

	ahead := totpAt(t, testSecret, clock.Now().Add(3*30*time.Second)) // three steps ahead: far
	ch := mustExchange(t, a.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.5"})
	expect(t, answerTo(t, a, ch, "203.0.113.5", ahead), radius.CodeAccessChallenge,
		"Your phone's clock seems off; enter the next code from your authenticator app")

	clock.Advance(3 * 30 * time.Second) // its step is now
	ch = mustExchange(t, a.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.5"})
	if got := answerTo(t, a, ch, "203.0.113.5", ahead); got.Code == radius.CodeAccessAccept {
		t.Fatal("A accepted the far code it had told about")
	}
	ch = mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.6"})
	if got := answerTo(t, b, ch, "203.0.113.6", ahead); got.Code == radius.CodeAccessAccept {
		t.Error("B accepted the far code A had told about")
	}
}

// TestRecoveryCodeOnceAcrossNodes: the same recovery code answered at A
// and at B at the same moment gives one Accept, every time: the code is
// spent in the user's record, which each node's commit compares.
func TestRecoveryCodeOnceAcrossNodes(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	key := filepath.Join(t.TempDir(), "cluster.key")
	a, b := startEtcdNode(t, etcd.Endpoints(), key, "a"), startEtcdNode(t, etcd.Endpoints(), key, "b")
	a.cli(t, "user", "add", "tom", "--tenant", "acme")
	a.cli(t, "user", "totp", "tom", "--secret", testSecret)
	for round := 0; round < 3; round++ {
		codes := regexp.MustCompile(`\d{4}-\d{4}-\d{4}`).FindAllString(a.cli(t, "user", "recovery-codes", "tom"), -1)
		if len(codes) != 10 {
			t.Fatalf("got %d recovery codes", len(codes))
		}
		waitFor(t, "B to see the new codes", func() bool {
			return strings.Contains(squash(b.cli(t, "user", "show", "tom")), "recovery codes: 10 left")
		})
		for _, code := range codes {
			chA := mustExchange(t, a.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.5"})
			chB := mustExchange(t, b.addrs[0], request{user: "tom", password: "x", callingStation: "203.0.113.6"})
			var wg sync.WaitGroup
			got := make([]*radius.Packet, 2)
			wg.Add(2)
			go func() { defer wg.Done(); got[0] = answerTo(t, a, chA, "203.0.113.5", code) }()
			go func() { defer wg.Done(); got[1] = answerTo(t, b, chB, "203.0.113.6", code) }()
			wg.Wait()
			if n := accepts(got); n != 1 {
				t.Fatalf("round %d: one recovery code at A and B at once: %d Accepts, want 1", round, n)
			}
			a.cli(t, "user", "unlock", "tom") // the loser's wrong code counts
		}
	}
}

func accepts(ps []*radius.Packet) int {
	n := 0
	for _, p := range ps {
		if p != nil && p.Code == radius.CodeAccessAccept {
			n++
		}
	}
	return n
}
