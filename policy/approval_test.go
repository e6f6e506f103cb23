package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/sms"
)

// holdFixture is a fixture whose hold timer fires when the test says,
// and which hears of each message sent.
type holdFixture struct {
	*fixture
	timeout chan time.Time
	sent    chan sms.Message
}

// notifying records a message and tells the test.
type notifying struct {
	rec  *recordingSender
	sent chan sms.Message
}

func (n notifying) Send(ctx context.Context, m sms.Message) (string, error) {
	p, err := n.rec.Send(ctx, m)
	n.sent <- m
	return p, err
}

func newHoldFixture(t *testing.T) *holdFixture {
	h := &holdFixture{timeout: make(chan time.Time, 1), sent: make(chan sms.Message, 16)}
	h.fixture = newFixture(t, func(c *policy.Config) {
		c.PublicURL = "https://otp.example.com/"
		c.After = func(time.Duration) <-chan time.Time { return h.timeout }
	}, withTenantChange("acme", func(t *policy.Tenant) { t.PreapprovalWindow = 5 * time.Minute }))
	// The engine is made; give it a sender that tells the test.
	h.fixture.engine = policy.New(policy.Config{
		Store: h.db, Key: h.key, Tenants: withPreapproval(tenants()), Now: func() time.Time { return h.now },
		Senders: allChannels(notifying{h.sender, h.sent}), PublicURL: "https://otp.example.com/",
		After: func(time.Duration) <-chan time.Time { return h.timeout },
	})
	return h
}

func withPreapproval(ts []policy.Tenant) []policy.Tenant {
	for i := range ts {
		ts[i].PreapprovalWindow = 5 * time.Minute
	}
	return ts
}

func rdg(user string) policy.Request {
	r := login(user, ipX)
	r.Client, r.NoChallenge, r.Machine = "rdgw", true, "LAPTOP-7"
	return r
}

// held starts a held login and returns its result channel and the link
// sent to the user.
func (h *holdFixture) held(req policy.Request) (<-chan policy.Result, string) {
	h.t.Helper()
	out := make(chan policy.Result, 1)
	go func() {
		res := h.engine.Decide(context.Background(), req)
		if res.Wait == nil {
			h.t.Errorf("got %s (%s), want a held login", res.Decision, res.Reason)
		} else {
			res = res.Wait()
		}
		out <- res
	}()
	select {
	case m := <-h.sent:
		return out, m.Text[strings.LastIndex(m.Text, "https://"):]
	case r := <-out:
		h.t.Fatalf("got %s (%s) and no approval link", r.Decision, r.Reason)
	}
	return nil, ""
}

func token(link string) string { return link[strings.LastIndexByte(link, '/')+1:] }

func TestHoldApproved(t *testing.T) {
	h := newHoldFixture(t)
	res, link := h.held(rdg("bob"))
	if !strings.HasPrefix(link, "https://otp.example.com/a/") || len(token(link)) != 32 {
		t.Fatalf("got link %q, want https://otp.example.com/a/ and a 128-bit token", link)
	}
	a, ok := h.engine.Approval(token(link))
	if !ok || a.User != "bob" || a.Client != "rdgw" || a.Machine != "LAPTOP-7" || a.IP != ipX {
		t.Fatalf("got %+v, %v, want bob's login through rdgw from LAPTOP-7", a, ok)
	}
	if err := h.engine.Resolve(token(link), true); err != nil {
		t.Fatal(err)
	}
	got := <-res
	check(t, got, want{policy.Accept, "approved", "", "sms"})
	if err := h.engine.Resolve(token(link), true); !errors.Is(err, policy.ErrApprovalGone) {
		t.Errorf("second use of the link: got %v, want ErrApprovalGone", err)
	}
	// Same user, same address, recently approved: no new link.
	check(t, h.engine.Decide(context.Background(), rdg("bob")), want{policy.Accept, "reconnect", msgs.Reconnected, ""})
}

func TestHoldDeniedAndTimeout(t *testing.T) {
	h := newHoldFixture(t)
	res, link := h.held(rdg("bob"))
	if err := h.engine.Resolve(token(link), false); err != nil {
		t.Fatal(err)
	}
	check(t, <-res, want{policy.Reject, "denied", msgs.Denied, "sms"})

	r := rdg("bob")
	r.Machine = "OTHER-PC"
	res, link = h.held(r)
	h.timeout <- time.Time{}
	check(t, <-res, want{policy.Reject, "approval_timeout", msgs.ApprovalTimeout, "sms"})
	if _, ok := h.engine.Approval(token(link)); ok {
		t.Errorf("the link of a timed-out login still works")
	}
}

func TestHoldNeedsALinkMethod(t *testing.T) {
	h := newHoldFixture(t)
	check(t, h.decide(rdg("alice")), want{policy.Reject, "no_link_method", "Sign in at https://otp.example.com/signin first, then log in again.", ""})
}

func TestPreapproval(t *testing.T) {
	h := newHoldFixture(t)
	web := func(u string) policy.Request {
		r := login(u, ipY)
		r.Client, r.SignIn = "web", true
		return r
	}
	res := h.decide(web("alice"))
	check(t, res, want{policy.Challenge, "challenge_code_only", msgs.SignInCode, "totp"})
	a := web("alice")
	a.State, a.Password = res.State, h.code()
	check(t, h.decide(a), want{policy.Accept, "totp_ok_preapproved", "", "totp"})
	// Alice has no SMS or e-mail for a link, but she is pre-approved.
	check(t, h.decide(rdg("alice")), want{policy.Accept, "preapproved", "", ""})
	h.advance(5*time.Minute + time.Second)
	check(t, h.decide(rdg("alice")), want{policy.Reject, "no_link_method", "Sign in at https://otp.example.com/signin first, then log in again.", ""})
}
