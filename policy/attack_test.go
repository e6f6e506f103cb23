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
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// sealedNodes is clusterNodes with the fixture's configuration changed by
// with first.
func sealedNodes(t *testing.T, with ...func(*policy.Config)) (f *fixture, a, b *policy.Engine) {
	t.Helper()
	etcd := etcdtest.Start(t, 3)
	var cfg policy.Config
	f = newFixture(t, append(with, func(c *policy.Config) {
		node := live.NewCluster(etcd.Client(t), "/otpgate-live/")
		node.Key, node.Now = c.Key, c.Now
		t.Cleanup(node.Close)
		c.Challenges, c.Approvals = node, node
		cfg = *c
	})...)
	node := live.NewCluster(etcd.Client(t), "/otpgate-live/")
	node.Key, node.Now = cfg.Key, cfg.Now
	t.Cleanup(node.Close)
	cfg.Challenges, cfg.Approvals = node, node
	return f, f.engine, policy.New(cfg)
}

// sealedChallenge fails t unless res asks for a code under a sealed State.
func sealedChallenge(t *testing.T, what string, res policy.Result, reason string) {
	t.Helper()
	if res.Decision != policy.Challenge || res.Reason != reason || !strings.HasPrefix(res.State, "s") {
		t.Fatalf("%s: got %s (%s) State %q, want a %s challenge under a sealed State", what, res.Decision, res.Reason, res.State, reason)
	}
}

// TestSealedStateAnsweredOnceAtOnce answers one sealed State at both
// nodes at the same moment, two wrong codes and two "resend" at each,
// thirty times: one answer takes it, the others find nothing. Were two
// to take it, each would carry on with the same count of attempts (a
// State forked into many, each with the tries left).
func TestSealedStateAnsweredOnceAtOnce(t *testing.T) {
	f, a, b := sealedNodes(t)
	ctx := context.Background()
	wrong := f.wrongCode()
	for round := range 30 {
		ip := netip.AddrFrom4([4]byte{10, 2, 0, byte(1 + round)})
		res := a.Decide(ctx, login("alice", ip))
		sealedChallenge(t, "login", res, "challenge")
		var nodes []*policy.Engine
		var reqs []policy.Request
		for i := range 8 {
			node, word := a, wrong
			if i%2 == 1 {
				node = b
			}
			if i%4 >= 2 {
				word = "resend"
			}
			nodes, reqs = append(nodes, node), append(reqs, answer("alice", res.State, word, ip))
		}
		results := atOnce(ctx, nodes, reqs)
		taken := 0
		for _, r := range results {
			switch {
			case refusedAsUsed(r):
			case r.Decision == policy.Challenge && (r.Reason == "wrong_code" || r.Reason == "resend_totp"):
				taken++
			default:
				t.Errorf("round %d: got %s (%s)", round, r.Decision, r.Reason)
			}
		}
		if taken != 1 {
			t.Fatalf("round %d: %d answers took one State, want exactly 1", round, taken)
		}
	}
}

// TestSealedAttemptsCannotBeRenewed: with no lockout, the tries of a
// TOTP challenge are its only limit between logins. Neither "resend",
// nor a switch to another method and back, nor an earlier State replayed
// at either node, gives a try more than the tenant's three.
func TestSealedAttemptsCannotBeRenewed(t *testing.T) {
	f, a, b := sealedNodes(t)
	ctx := context.Background()
	u := f.totpUser(store.User{Name: "tina", Tenant: "acme", Method: policy.MethodTOTP, Phone: "+31612345670"})
	f.addUsers(u)
	wrong := f.wrongCode()
	res := a.Decide(ctx, login("tina", ipX))
	sealedChallenge(t, "login", res, "challenge")
	var old []string // every State seen
	step := func(node *policy.Engine, state, word string) policy.Result {
		t.Helper()
		old = append(old, state)
		return node.Decide(ctx, answer("tina", state, word, ipX))
	}
	r1 := step(b, res.State, wrong)
	sealedChallenge(t, "first wrong code", r1, "wrong_code")
	r2 := step(a, r1.State, "resend")
	sealedChallenge(t, "resend", r2, "resend_totp")
	r3 := step(b, r2.State, "totp")
	sealedChallenge(t, "totp named", r3, "resend_totp")
	r4 := step(a, r3.State, "sms")
	if r4.Decision != policy.Challenge || r4.Reason != "switch" || r4.Method != "sms" {
		t.Fatalf("switch to sms: got %s (%s) %s", r4.Decision, r4.Reason, r4.Method)
	}
	f.advance(time.Minute) // past the resend cooldown, if any
	r5 := step(b, r4.State, "totp")
	sealedChallenge(t, "switch back to totp", r5, "switch")
	r6 := step(a, r5.State, wrong)
	if r6.Decision != policy.Challenge || r6.Reason != "wrong_code" || !strings.Contains(r6.Message, "1 try left") {
		t.Fatalf("second wrong code: got %s (%s) %q, want a challenge with 1 try left", r6.Decision, r6.Reason, r6.Message)
	}
	for i, s := range old {
		for _, node := range []*policy.Engine{a, b} {
			if r := node.Decide(ctx, answer("tina", s, wrong, ipX)); !refusedAsUsed(r) {
				t.Errorf("State %d replayed: got %s (%s)", i, r.Decision, r.Reason)
			}
			if r := node.Decide(ctx, answer("tina", s, "resend", ipX)); !refusedAsUsed(r) {
				t.Errorf("State %d replayed with resend: got %s (%s)", i, r.Decision, r.Reason)
			}
		}
	}
	r7 := step(b, r6.State, wrong)
	if r7.Decision != policy.Reject || r7.Reason != "wrong_code_final" {
		t.Fatalf("third wrong code: got %s (%s), want the final one", r7.Decision, r7.Reason)
	}
}

// TestSealedStateOfAnotherUser: alice's State answered as grace, or at
// another gateway, is refused and stays alice's.
func TestSealedStateOfAnotherUser(t *testing.T) {
	f, a, b := sealedNodes(t)
	ctx := context.Background()
	res := a.Decide(ctx, login("alice", ipX))
	sealedChallenge(t, "login", res, "challenge")
	if r := b.Decide(ctx, answer("grace", res.State, f.code(), ipX)); r.Decision != policy.Reject || r.Reason != "state_mismatch" {
		t.Errorf("grace: got %s (%s), want state_mismatch", r.Decision, r.Reason)
	}
	other := answer("alice", res.State, f.code(), ipX)
	other.Client = "vpn"
	if r := b.Decide(ctx, other); r.Decision != policy.Reject || r.Reason != "state_mismatch" {
		t.Errorf("another gateway: got %s (%s), want state_mismatch", r.Decision, r.Reason)
	}
	if r := b.Decide(ctx, answer("ALICE ", res.State, f.code(), ipX)); r.Decision != policy.Accept {
		t.Errorf("alice: got %s (%s), want Accept", r.Decision, r.Reason)
	}
}

// TestSealedCodeOnlySignIn: the sign-in page's code-only question, sealed:
// each State answers once, at either node, at once; wrong answers count
// on the page's counter however they are spread over States and nodes.
func TestSealedCodeOnlySignIn(t *testing.T) {
	f, a, b := sealedNodes(t)
	ctx := context.Background()
	wrong := f.wrongCode()
	req := func(state, code string) policy.Request {
		r := signIn("alice", policy.FirstFactorNone, "", ipY)
		r.State, r.Password = state, code
		return r
	}
	res := a.Decide(ctx, signIn("alice", policy.FirstFactorNone, "", ipY))
	sealedChallenge(t, "ask", res, "challenge_code_only")
	results := make([]policy.Result, 6)
	var wg sync.WaitGroup
	for i := range results {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Go(func() { results[i] = node.Decide(ctx, req(res.State, wrong)) })
	}
	wg.Wait()
	var next string
	for _, r := range results {
		switch {
		case r.Reason == "unknown_state":
		case r.Decision == policy.Challenge && next == "":
			next = r.State
		default:
			t.Fatalf("got %s (%s), want one new State and the rest unknown_state", r.Decision, r.Reason)
		}
	}
	if next == "" {
		t.Fatal("no answer took the State")
	}
	// Fresh questions and new States: after five wrong codes in all the
	// page is locked for the name, and a right code is refused.
	state := next
	for i := 1; i < 5; i++ {
		if i%2 == 0 {
			r := b.Decide(ctx, signIn("alice", policy.FirstFactorNone, "", ipY))
			state = r.State
		}
		r := a.Decide(ctx, req(state, wrong))
		state = r.State
	}
	r := b.Decide(ctx, signIn("alice", policy.FirstFactorNone, "", ipY))
	if r.Reason != "sign_in_locked" {
		t.Errorf("after five wrong codes: got %s (%s), want sign_in_locked", r.Decision, r.Reason)
	}
	if state != "" {
		if r := a.Decide(ctx, req(state, f.code())); r.Decision == policy.Accept {
			t.Errorf("a right code after five wrong ones: got %s (%s)", r.Decision, r.Reason)
		}
	}
}

// appendLogin is a login at a gateway that cannot prompt: the code comes
// after the password.
func appendLogin(user, code string, ip netip.Addr) policy.Request {
	r := login(user, ip)
	r.CodeInPassword, r.Password = policy.CodeAppend, "pw"+code
	return r
}

// TestSealedAppendResync: at a gateway that cannot prompt, a phone three
// steps ahead is told its code is far, and the next login with the next
// code learns the drift: the challenge with NextStep waits for the next
// login, as on one node (see appended: "the challenge, with its attempt
// counted, waits for the next login"). Sealed, it would be put into a
// State nobody is given, and the phone would be far for ever.
func TestSealedAppendResync(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		name := "one node"
		if cluster {
			name = "cluster"
		}
		t.Run(name, func(t *testing.T) {
			var f *fixture
			var a, b *policy.Engine
			if cluster {
				f, a, b = sealedNodes(t)
			} else {
				f = newFixture(t)
				a, b = f.engine, f.engine
			}
			ctx := context.Background()
			phone := func() string { return f.codeAt(f.now.Add(steps(3))) }
			r := a.Decide(ctx, appendLogin("alice", phone(), ipX))
			if r.Reason != "totp_far" {
				t.Fatalf("first login: got %s (%s), want totp_far", r.Decision, r.Reason)
			}
			f.advance(otp.Period)
			r = b.Decide(ctx, appendLogin("alice", phone(), ipX))
			if r.Decision != policy.Accept || r.Reason != "totp_resync" {
				t.Errorf("the next code at the next login: got %s (%s), want Accept (totp_resync)", r.Decision, r.Reason)
			}
		})
	}
}
