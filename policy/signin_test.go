package policy_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// signIn is a login on the sign-in page with the first factor given.
func signIn(user, firstFactor, pw string, ip netip.Addr) policy.Request {
	return policy.Request{Client: "web", Tenant: "acme", FirstFactor: firstFactor, User: user, Password: pw, IP: ip, SignIn: true}
}

// TestSignInTrustedPlacesSkipNothing: from every kind of trusted place,
// with the right password, the sign-in page still asks for a code and
// pre-approves nothing; without a password it asks every name the same.
func TestSignInTrustedPlacesSkipNothing(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) {
		t.RememberIPFor, t.PreapprovalWindow = time.Hour, 5*time.Minute
	}))
	grace := func() store.User {
		var u store.User
		f.db.View(func(tx *store.Tx) error { u, _ = tx.User("grace"); return nil })
		return u
	}
	u := grace()
	u.HomeIPs = []netip.Prefix{netip.PrefixFrom(home, 32)}
	f.addUsers(u)
	// grace proves a code at a gateway from ipX, on machine PC-1: ipX is
	// now her reconnect IP and remembered IP, PC-1 her machine.
	gw := login("grace", ipX)
	gw.Machine = "PC-1"
	res := f.decide(gw)
	f.decide(answer("grace", res.State, f.code(), ipX))
	f.advance(30 * time.Second)

	for _, tc := range []struct {
		name    string
		ip      netip.Addr
		machine string
	}{{"office", office, ""}, {"home", home, ""}, {"reconnect and remembered", ipX, ""}, {"machine", netip.Addr{}, "PC-1"}} {
		for _, ff := range []string{policy.FirstFactorLocal, policy.FirstFactorNone} {
			req := signIn("grace", ff, password, tc.ip)
			req.Machine = tc.machine
			res := f.decide(req)
			if res.Decision != policy.Challenge {
				t.Errorf("%s, first factor %s: got %v (%s), want a challenge", tc.name, ff, res.Decision, res.Reason)
			}
		}
	}
	hold := login("grace", ipY)
	hold.NoChallenge = true
	if res := f.decide(hold); res.Reason == "preapproved" {
		t.Errorf("a gateway that cannot prompt: got %s after sign-ins with no code", res.Reason)
	}
}

// TestSignInCodeOnlyDecoys: without a first factor, an unknown name, a
// user with SMS only and a user locked out at the gateways are asked and
// answered like a TOTP user with a wrong code; wrong codes lock the name
// out of the page only, and a right code pre-approves.
func TestSignInCodeOnlyDecoys(t *testing.T) {
	f := newFixture(t, withTenantChange("acme", func(t *policy.Tenant) {
		t.PreapprovalWindow = 5 * time.Minute
		t.Lockout = policy.Lockout{Failures: 4, Window: time.Hour, Duration: time.Hour}
	}))
	u := f.totpUser(store.User{Name: "locky", Tenant: "acme", Method: policy.MethodTOTP, LockedUntil: start.Add(time.Hour)})
	f.addUsers(u)
	wrong := f.wrongCode()
	run := func(name string) []policy.Result {
		var out []policy.Result
		for range 5 {
			res := f.decide(signIn(name, policy.FirstFactorNone, "", ipY))
			out = append(out, res)
			if res.State != "" {
				a := signIn(name, policy.FirstFactorNone, "", ipY)
				a.State, a.Password = res.State, wrong
				out = append(out, f.decide(a))
			}
		}
		return out
	}
	ref := run("alice")
	for _, name := range []string{"nobody", "bob", "locky", "erin"} {
		got := run(name)
		for i := range ref {
			if got[i].Decision != ref[i].Decision || got[i].Message != ref[i].Message {
				t.Errorf("%s step %d: got %v %q, want %v %q as for a TOTP user", name, i, got[i].Decision, got[i].Message, ref[i].Decision, ref[i].Message)
			}
		}
	}
	if last := ref[len(ref)-1]; last.Reason != "sign_in_locked" {
		t.Errorf("after 5 wrong codes got %s, want sign_in_locked", last.Reason)
	}
	if n := len(f.sender.messages()); n != 0 {
		t.Errorf("got %d messages sent, want none", n)
	}
	// alice is not locked at the gateways, and her code still works there.
	res := f.decide(login("alice", ipX))
	check(t, res, want{policy.Challenge, "challenge", msgs.TOTPPrompt, "totp"})
	check(t, f.decide(answer("alice", res.State, f.code(), ipX)), want{policy.Accept, "totp_ok", "", "totp"})

	// A right code pre-approves.
	f.advance(time.Minute)
	res = f.decide(signIn("judy", policy.FirstFactorNone, "", ipY))
	a := signIn("judy", policy.FirstFactorNone, "", ipY)
	a.State, a.Password = res.State, f.code()
	check(t, f.decide(a), want{policy.Accept, "totp_ok_preapproved", "", "totp"})
}

// failingChallenges is a challenge table whose writes fail, as a cluster's
// do while etcd is down.
type failingChallenges struct{ *live.Table }

func (failingChallenges) Put(*live.Challenge) error {
	return errors.New("etcdserver: request timed out")
}

// TestSignInCodeOnlyUnavailable: without a first factor, while the
// challenges cannot be kept, the page asks no question it could not
// judge: every name, known or not, gets the same "unavailable" answer.
func TestSignInCodeOnlyUnavailable(t *testing.T) {
	f := newFixture(t, func(c *policy.Config) { c.Challenges = failingChallenges{live.NewTable()} })
	var ref policy.Result
	for i, name := range []string{"alice", "nobody", "bob"} {
		res := f.decide(signIn(name, policy.FirstFactorNone, "", ipY))
		if res.Decision != policy.Reject || res.State != "" || res.Message != msgs.Unavailable {
			t.Errorf("%s: got %v %q (%s, State %q), want a reject saying login is unavailable", name, res.Decision, res.Message, res.Reason, res.State)
		}
		if i == 0 {
			ref = res
		} else if res.Decision != ref.Decision || res.Reason != ref.Reason || res.Message != ref.Message {
			t.Errorf("%s: got %v %s %q, alice got %v %s %q: want the same", name, res.Decision, res.Reason, res.Message, ref.Decision, ref.Reason, ref.Message)
		}
	}
}
