package policy_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func TestMachineNameIsNoPlace(t *testing.T) {
	// RD Gateway sends the computer name the client chose. After bob
	// approves a login from LAPTOP-7 at ipX, the same name from another
	// address, or from none, is held for approval again; only ipX is
	// within the reconnect window.
	h := newHoldFixture(t)
	res, link := h.held(rdg("bob"))
	if err := h.engine.Resolve(token(link), true); err != nil {
		t.Fatal(err)
	}
	check(t, <-res, want{policy.Accept, "approved", "", "sms"})

	for _, ip := range []netip.Addr{ipY, {}} {
		r := rdg("bob")
		r.IP = ip
		res, link := h.held(r) // fails the test if it is let through
		if err := h.engine.Resolve(token(link), false); err != nil {
			t.Fatal(err)
		}
		check(t, <-res, want{policy.Reject, "denied", msgs.Denied, "sms"})
	}
	check(t, h.engine.Decide(context.Background(), rdg("bob")), want{policy.Accept, "reconnect", msgs.Reconnected, ""})
}

func TestMachineNameOldProvenEntry(t *testing.T) {
	// A store written when a computer name alone was a place still holds
	// "machine:NAME" entries: they are read as nothing, not as an error.
	h := newHoldFixture(t)
	if err := h.db.Update(func(tx *store.Tx) error {
		return tx.PutProvenFrom("bob", "machine:LAPTOP-7", h.now)
	}); err != nil {
		t.Fatal(err)
	}
	r := rdg("bob")
	r.IP = netip.Addr{}
	res, link := h.held(r)
	if err := h.engine.Resolve(token(link), false); err != nil {
		t.Fatal(err)
	}
	check(t, <-res, want{policy.Reject, "denied", msgs.Denied, "sms"})
	if n, err := h.db.Prune(h.now.Add(time.Hour), h.now.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("pruning the old entry: got %d removed, %v, want 1", n, err)
	}
}
