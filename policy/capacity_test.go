package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/sms"
	"github.com/otpgate/otpgate/store"
)

// heldVia is an RD Gateway login of user through client from machine.
func heldVia(user, client, machine string) policy.Request {
	r := rdg(user)
	r.Client, r.Machine, r.IP = client, machine, ipX
	return r
}

// TestHoldLimits: held logins are capped per user, per gateway and in all;
// one more is rejected at once (hold_limit, recorded) and sends nothing;
// a held login that ends makes room again.
func TestHoldLimits(t *testing.T) {
	f := newFixture(t, func(c *policy.Config) {
		c.PublicURL = "https://otp.example.com"
		c.After = func(time.Duration) <-chan time.Time { return nil } // holds end when the test says
		c.HoldLimits = policy.HoldLimits{PerUser: 2, PerClient: 3, Total: 4}
	})
	f.addUsers(store.User{Name: "sam", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31612345670"})
	ctx := context.Background()
	var waits []func() policy.Result
	hold := func(req policy.Request) {
		t.Helper()
		res := f.engine.Decide(ctx, req)
		if res.Wait == nil {
			t.Fatalf("%s through %s: got %s (%s), want held", req.User, req.Client, res.Decision, res.Reason)
		}
		waits = append(waits, res.Wait)
	}
	full := func(req policy.Request) {
		t.Helper()
		sent := len(f.sender.messages())
		res := f.engine.Decide(ctx, req)
		if res.Wait != nil {
			t.Fatalf("%s through %s: got held, want rejected at once", req.User, req.Client)
		}
		check(t, res, want{policy.Reject, "hold_limit", msgs.Unavailable, res.Method})
		if n := len(f.sender.messages()); n != sent {
			t.Errorf("a login beyond the caps sent %d messages, want none", n-sent)
		}
		if e := f.auditLog()[0]; e.Reason != "hold_limit" || e.User != req.User {
			t.Errorf("audit: got %+v, want %s's hold_limit", e, req.User)
		}
	}

	hold(heldVia("bob", "rdgw", "PC-1"))
	hold(heldVia("bob", "rdgw", "PC-1")) // the same login again shares the link
	full(heldVia("bob", "rdgw", "PC-2")) // per user
	hold(heldVia("rita", "rdgw", "PC-3"))
	full(heldVia("rita", "rdgw", "PC-3"))  // per gateway
	full(heldVia("sam", "rdgw", "PC-4"))   // per gateway
	hold(heldVia("rita", "rdgw2", "PC-3")) // another gateway
	full(heldVia("sam", "rdgw2", "PC-4"))  // in all
	if got := f.engine.Held(); got != 4 {
		t.Errorf("Held: got %d, want 4", got)
	}
	links := f.sender.messages()
	if len(links) != 3 {
		t.Fatalf("got %d links sent, want 3 (bob's two logins share one)", len(links))
	}

	// Bob approves: both his held logins are accepted, and there is room.
	if err := f.engine.Resolve(token(links[0].Text[strings.LastIndex(links[0].Text, "https://"):]), true); err != nil {
		t.Fatal(err)
	}
	for _, w := range waits[:2] {
		check(t, w(), want{policy.Accept, "approved", "", policy.MethodSMS})
	}
	if got := f.engine.Held(); got != 2 {
		t.Errorf("Held after an approval: got %d, want 2", got)
	}
	hold(heldVia("sam", "rdgw2", "PC-4"))

	// Stopping ends the rest.
	f.engine.StopHolds()
	for _, w := range waits[2:] {
		res := w()
		check(t, res, want{policy.Reject, "approval_timeout", msgs.ApprovalTimeout, res.Method})
	}
	if got := f.engine.Held(); got != 0 {
		t.Errorf("Held after StopHolds: got %d, want 0", got)
	}
}

// blockingSender takes each message and holds it until released.
type blockingSender struct {
	entered chan sms.Message
	release chan struct{}
}

func (b blockingSender) Send(ctx context.Context, m sms.Message) (string, error) {
	b.entered <- m
	<-b.release
	return "slow", nil
}

// TestIOShare: with every I/O slot taken by a delivery that hangs, a login
// that would send, or would wait behind one, is rejected at once as busy
// and sends nothing, while a login from the office is accepted; when the
// delivery ends the slot is free again.
func TestIOShare(t *testing.T) {
	slow := blockingSender{entered: make(chan sms.Message, 4), release: make(chan struct{})}
	f := newFixture(t, func(c *policy.Config) {
		c.MaxIO = 1
		c.Senders = allChannels(slow)
	})
	f.addUsers(store.User{Name: "sam", Tenant: "acme", Method: policy.MethodSMS, Phone: "+31612345670"})
	first := make(chan policy.Result, 1)
	go func() { first <- f.engine.Decide(context.Background(), login("bob", ipX)) }()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("bob's code was not sent")
	}
	check(t, f.decide(login("sam", ipX)), want{policy.Reject, "busy", msgs.Unavailable, policy.MethodSMS})
	check(t, f.decide(login("bob", ipY)), want{policy.Reject, "busy", msgs.Unavailable, policy.MethodSMS})
	check(t, f.decide(login("alice", office)), want{policy.Accept, "office_network", msgs.OfficeIP, ""})
	select {
	case m := <-slow.entered:
		t.Fatalf("a message to %s was sent with no I/O slot free", m.To)
	default:
	}

	close(slow.release)
	check(t, <-first, want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****78 (or type resend)", policy.MethodSMS})
	f.decisions++ // bob's first, decided outside f.decide
	check(t, f.decide(login("sam", ipX)), want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****70 (or type resend)", policy.MethodSMS})
}

// failingAfter takes each message, waits until released, then fails.
type failingAfter struct{ blockingSender }

func (f failingAfter) Send(ctx context.Context, m sms.Message) (string, error) {
	f.blockingSender.Send(ctx, m)
	return "", errors.New("provider down")
}

// TestHoldLinkNotSent: when the link of a held login cannot be sent, the
// logins that share it are rejected at once too, instead of waiting out
// the hold (and its cap) for a link nobody got.
func TestHoldLinkNotSent(t *testing.T) {
	slow := failingAfter{blockingSender{entered: make(chan sms.Message, 1), release: make(chan struct{})}}
	f := newFixture(t, func(c *policy.Config) {
		c.PublicURL = "https://otp.example.com"
		c.After = func(time.Duration) <-chan time.Time { return nil } // the hold never runs out here
		c.Senders = allChannels(slow)
	})
	first := make(chan policy.Result, 1)
	go func() { first <- f.engine.Decide(context.Background(), heldVia("bob", "rdgw", "PC-1")) }()
	<-slow.entered
	second := f.engine.Decide(context.Background(), heldVia("bob", "rdgw", "PC-1"))
	if second.Wait == nil {
		t.Fatalf("the second login: got %s (%s), want held on the first one's link", second.Decision, second.Reason)
	}
	close(slow.release)
	check(t, <-first, want{policy.Reject, "delivery_failed", msgs.DeliveryFailed, policy.MethodSMS})
	shared := make(chan policy.Result, 1)
	go func() { shared <- second.Wait() }()
	select {
	case res := <-shared:
		check(t, res, want{policy.Reject, "delivery_failed", msgs.DeliveryFailed, policy.MethodSMS})
	case <-time.After(10 * time.Second):
		f.engine.StopHolds()
		t.Fatalf("the login sharing an unsent link was still held; got %s after StopHolds", (<-shared).Reason)
	}
	if got := f.engine.Held(); got != 0 {
		t.Errorf("Held: got %d, want 0", got)
	}
}
