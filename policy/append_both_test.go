package policy_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// TestClusterAppendAtBothNodes: a gateway that cannot prompt (the code
// after the password) and sends each login to both nodes at once: one
// node accepts, and the other must not send a Reject the gateway may take
// first.
//
// Not so yet: the copy that loses gets "totp_replay" (its commit conflicts
// with the winner's step, and the code judged again is a replay), a
// Reject the gateway takes first about half the time. Unskip to see it.
func TestClusterAppendAtBothNodes(t *testing.T) {
	t.Skip("known gap: code-in-password logins at both nodes at once (see the comment)")
	f, a, b := clusterNodes(t)
	ctx := context.Background()
	sent := 0
	for round := range 20 {
		f.advance(3 * time.Minute)
		ip := netip.AddrFrom4([4]byte{10, 3, 0, byte(1 + round)})
		req := appendLogin("alice", f.code(), ip)
		rs := atOnce(ctx, []*policy.Engine{a, b}, []policy.Request{req, req})
		accepts := 0
		for _, r := range rs {
			switch {
			case r.Decision == policy.Accept:
				accepts++
			case !r.Unanswered:
				sent++
				t.Logf("round %d: the other copy got a %s (%s), sent to the gateway", round, r.Decision, r.Reason)
			}
		}
		if accepts != 1 {
			t.Fatalf("round %d: %d Accepts", round, accepts)
		}
	}
	if sent > 0 {
		t.Errorf("in %d of 20 rounds the copy that lost sent a Reject", sent)
	}
}
