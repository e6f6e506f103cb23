package policy_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/policy"
)

// clusterNodes makes two engines, nodes A (the fixture's) and B, that
// share the fixture's store (as nodes share the store core) and keep
// their challenges and approvals in one real three-member etcd, each
// through its own client.
func clusterNodes(t *testing.T) (f *fixture, a, b *policy.Engine) {
	t.Helper()
	etcd := etcdtest.Start(t, 3)
	var cfg policy.Config
	f = newFixture(t, func(c *policy.Config) {
		node := live.NewCluster(etcd.Client(t), "/otpgate-live/")
		node.Key, node.Now = c.Key, c.Now
		t.Cleanup(node.Close)
		c.Challenges, c.Approvals = node, node
		c.PublicURL = "https://otp.example.com/"
		cfg = *c
	})
	node := live.NewCluster(etcd.Client(t), "/otpgate-live/")
	node.Key, node.Now = cfg.Key, cfg.Now
	t.Cleanup(node.Close)
	cfg.Challenges, cfg.Approvals = node, node
	return f, f.engine, policy.New(cfg)
}

// sentCode is the code in the newest message sent.
func (f *fixture) sentCode() string {
	f.t.Helper()
	ms := f.sender.messages()
	if len(ms) == 0 {
		f.t.Fatal("nothing sent")
	}
	text := ms[len(ms)-1].Text
	return text[strings.LastIndexByte(text, ' ')+1:]
}

func TestClusterChallengeAnsweredAtTheOtherNode(t *testing.T) {
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	ch := a.Decide(ctx, login("bob", ipX))
	if ch.Decision != policy.Challenge || ch.Reason != "challenge" {
		t.Fatalf("login at A: got %s (%s), want a challenge", ch.Decision, ch.Reason)
	}
	code := f.sentCode()
	// The login repeated at B finds A's challenge: nothing is sent twice.
	again := b.Decide(ctx, login("bob", ipX))
	if again.Reason != "challenge_reused" || again.State != ch.State {
		t.Fatalf("repeated login at B: got %s %q, want A's challenge reused", again.Reason, again.State)
	}
	// A wrong answer at B puts the challenge back under a new State,
	// which A answers.
	wrong := b.Decide(ctx, answer("bob", ch.State, "000000", ipX))
	check(t, wrong, want{policy.Challenge, "wrong_code", "Wrong code, 2 tries left", "sms"})
	// The old State, answered at A at once: taken a moment ago, as by the
	// copy of one answer that a gateway sent to both nodes, so A sends
	// nothing; seconds later it is refused as unknown.
	if r := a.Decide(ctx, answer("bob", ch.State, code, ipX)); r.Reason != "answered_elsewhere" || !r.Unanswered {
		t.Fatalf("the taken State at once: got %s (%s) unanswered %v", r.Decision, r.Reason, r.Unanswered)
	}
	f.advance(6 * time.Second)
	check(t, a.Decide(ctx, answer("bob", ch.State, code, ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	check(t, a.Decide(ctx, answer("bob", wrong.State, code, ipX)), want{policy.Accept, "code_ok", "", "sms"})
	f.advance(6 * time.Second)
	check(t, b.Decide(ctx, answer("bob", wrong.State, code, ipX)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	// Another user's answer to it is refused and leaves it for its owner.
	ch = b.Decide(ctx, login("rita", ipY))
	code = f.sentCode()
	check(t, a.Decide(ctx, answer("bob", ch.State, code, ipY)), want{policy.Reject, "state_mismatch", msgs.CodeExpired, ""})
	check(t, a.Decide(ctx, answer("rita", ch.State, code, ipY)), want{policy.Accept, "code_ok", "", "email"})
}

// TestClusterOneAcceptPerState answers the same State at both nodes at
// the same moment, a hundred times: each time exactly one Accept. The
// code is a sent one, so that nothing but the challenge's single use
// (no TOTP step) stands between the two.
func TestClusterOneAcceptPerState(t *testing.T) {
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	for round := range 100 {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(round / 250), byte(1 + round%250)})
		ch := a.Decide(ctx, login("bob", ip))
		if ch.Decision != policy.Challenge {
			t.Fatalf("round %d: got %s (%s), want a challenge", round, ch.Decision, ch.Reason)
		}
		code := f.sentCode()
		r := answer("bob", ch.State, code, ip)
		oneAccept(t, round, atOnce(ctx, []*policy.Engine{a, b}, []policy.Request{r, r}))
	}
}

// TestClusterApprovalClickedAtTheOtherNode holds a login on A and clicks
// its link on B's page: A lets it through; the link is used up on both.
func TestClusterApprovalClickedAtTheOtherNode(t *testing.T) {
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	res := a.Decide(ctx, rdg("bob"))
	if res.Wait == nil {
		t.Fatalf("got %s (%s), want a held login", res.Decision, res.Reason)
	}
	done := make(chan policy.Result, 1)
	go func() { done <- res.Wait() }()
	ms := f.sender.messages()
	link := ms[len(ms)-1].Text
	tok := token(link[strings.LastIndex(link, "https://"):])
	// The same login reaching B meanwhile shares the link: nothing more is sent.
	shared := b.Decide(ctx, rdg("bob"))
	if shared.Wait == nil || len(f.sender.messages()) != len(ms) {
		t.Fatalf("login at B: got %s (%s) and %d messages, want held with the same link", shared.Decision, shared.Reason, len(f.sender.messages()))
	}
	sharedDone := make(chan policy.Result, 1)
	go func() { sharedDone <- shared.Wait() }()
	got, ok := b.Approval(tok)
	if !ok || got.User != "bob" || got.Client != "rdgw" || got.Machine != "LAPTOP-7" {
		t.Fatalf("approval at B: got %+v, %v, want bob's held login", got, ok)
	}
	if err := b.Resolve(tok, true); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]chan policy.Result{"A": done, "B": sharedDone} {
		select {
		case r := <-c:
			check(t, r, want{policy.Accept, "approved", "", "sms"})
		case <-time.After(10 * time.Second):
			t.Fatalf("the login held on %s was not released", name)
		}
	}
	if err := a.Resolve(tok, false); err != policy.ErrApprovalGone {
		t.Errorf("the link clicked again on A: got %v, want ErrApprovalGone", err)
	}
	if _, ok := a.Approval(tok); ok {
		t.Error("the used link still shows on A")
	}
}

// TestClusterSignInGuessesAtOnce: a guesser without a password opens
// questions for one name on the sign-in page and posts a wrong code to
// each, half at each node, all at the same moment: fewer at each node
// than the page's lockout (5), more in all. The name's count of wrong
// codes is one for the cluster, and no post is lost under the others, so
// the name is locked at both nodes: even the right code is refused.
func TestClusterSignInGuessesAtOnce(t *testing.T) {
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	wrong := f.wrongCode()
	const posts = 8 // four at each node; the page's lockout (acme has none) is 5
	states := make([]string, posts)
	for i := range states {
		res := a.Decide(ctx, signIn("alice", policy.FirstFactorNone, "", ipY))
		if res.State == "" {
			t.Fatalf("question %d: got %s (%s), want a question", i, res.Decision, res.Reason)
		}
		states[i] = res.State
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, state := range states {
		node := []*policy.Engine{a, b}[i%2]
		wg.Go(func() {
			<-start
			r := signIn("alice", policy.FirstFactorNone, "", ipY)
			r.State, r.Password = state, wrong
			if res := node.Decide(ctx, r); res.Decision == policy.Accept {
				t.Errorf("a wrong code accepted: %s", res.Reason)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, node := range []*policy.Engine{a, b} {
		if res := node.Decide(ctx, signIn("alice", policy.FirstFactorNone, "", ipY)); res.Reason != "sign_in_locked" {
			t.Errorf("after %d wrong codes, a question: got %s (%s), want sign_in_locked", posts, res.Decision, res.Reason)
			if res.State != "" {
				r := signIn("alice", policy.FirstFactorNone, "", ipY)
				r.State, r.Password = res.State, f.code()
				if res := node.Decide(ctx, r); res.Decision == policy.Accept {
					t.Errorf("and the right code is accepted (%s)", res.Reason)
				}
			}
		}
	}
}

// TestClusterSealedStateAnsweredOnce: an app's challenge in a cluster is
// sealed into its State, and its single use is claimed with what the
// answer writes. The same State answered at both nodes at the same moment,
// with two different right codes (the steps before and after the one
// accepted both lie in the window, so the replay guard alone would let
// the second through), gives exactly one Accept, a hundred times over,
// and the answer that lost the race goes unanswered (a gateway that sent
// it to both nodes takes the Accept); a wrong answer uses the State up
// too, and so does "resend", and an answer that comes after the State
// was used is refused (unknown_state), at either node.
func TestClusterSealedStateAnsweredOnce(t *testing.T) {
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	unanswered := 0
	defer func() {
		if unanswered == 0 && !t.Failed() {
			t.Error("in 100 rounds no answer that lost the race went unanswered")
		}
	}()
	for round := range 100 {
		ip := netip.AddrFrom4([4]byte{10, 2, 0, byte(1 + round)}) // not proven yet
		f.advance(3 * time.Minute)                                // past the steps used before
		ch := a.Decide(ctx, login("alice", ip))
		if ch.Decision != policy.Challenge || !strings.HasPrefix(ch.State, "s") {
			t.Fatalf("round %d: got %s (%s) %q, want a sealed challenge", round, ch.Decision, ch.Reason, ch.State)
		}
		early := answer("alice", ch.State, f.codeAt(f.now.Add(-30*time.Second)), ip)
		late := answer("alice", ch.State, f.codeAt(f.now.Add(30*time.Second)), ip)
		unanswered += oneAccept(t, round, atOnce(ctx, []*policy.Engine{a, b}, []policy.Request{early, late}))
		for _, node := range []*policy.Engine{a, b} {
			// Later, the same State: a replay, refused with an answer.
			check(t, node.Decide(ctx, early), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
		}
	}

	// A wrong answer gives a new State and uses the old one up: the right
	// code under the old State is refused at either node.
	f.advance(3 * time.Minute)
	ip := netip.MustParseAddr("10.2.1.1")
	ch := a.Decide(ctx, login("alice", ip))
	wrong := b.Decide(ctx, answer("alice", ch.State, f.wrongCode(), ip))
	if wrong.Decision != policy.Challenge || wrong.State == ch.State {
		t.Fatalf("a wrong code: got %s (%s), want a challenge under a new State", wrong.Decision, wrong.Reason)
	}
	for _, node := range []*policy.Engine{a, b} {
		check(t, node.Decide(ctx, answer("alice", ch.State, f.code(), ip)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	}
	// "resend" to an app's challenge keeps it under a new State; the old
	// one cannot mint more.
	again := a.Decide(ctx, answer("alice", wrong.State, "resend", ip))
	if again.Decision != policy.Challenge || again.State == wrong.State {
		t.Fatalf("resend: got %s (%s), want the challenge under a new State", again.Decision, again.Reason)
	}
	check(t, b.Decide(ctx, answer("alice", wrong.State, "resend", ip)), want{policy.Reject, "unknown_state", msgs.CodeExpired, ""})
	check(t, b.Decide(ctx, answer("alice", again.State, f.code(), ip)), want{policy.Accept, "totp_ok", "", "totp"})
}

// atOnce decides each request at its node at the same moment and returns
// the results in the requests' order.
func atOnce(ctx context.Context, nodes []*policy.Engine, reqs []policy.Request) []policy.Result {
	results := make([]policy.Result, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			results[i] = nodes[i].Decide(ctx, req)
		})
	}
	close(start)
	wg.Wait()
	return results
}

// oneAccept fails t unless exactly one of results is an Accept and the
// others found the State used (refusedAsUsed). It returns how many of
// those lost the race to it and go unanswered.
func oneAccept(t *testing.T, round int, results []policy.Result) (unanswered int) {
	t.Helper()
	accepts := 0
	for _, r := range results {
		switch {
		case r.Decision == policy.Accept:
			accepts++
		case !refusedAsUsed(r):
			t.Errorf("round %d: got %s (%s), want an Accept or unknown_state", round, r.Decision, r.Reason)
		case r.Unanswered:
			unanswered++
		}
	}
	if accepts != 1 {
		t.Fatalf("round %d: got %d Accepts, want exactly 1 (%+v)", round, accepts, results)
	}
	return unanswered
}

// refusedAsUsed reports whether r refuses an answer to a State answered
// before it (unknown_state, a Reject the gateway gets) or at the same
// moment (answered_elsewhere: no answer at all, see
// policy.Result.Unanswered).
func refusedAsUsed(r policy.Result) bool {
	if r.Decision != policy.Reject {
		return false
	}
	return r.Reason == "unknown_state" && !r.Unanswered || r.Reason == "answered_elsewhere" && r.Unanswered
}
