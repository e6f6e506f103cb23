package policy_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/otpgate/otpgate/policy"
)

// TestClusterAppendAtBothNodes: a gateway that cannot prompt (the code
// after the password) and sends each login to both nodes at once, each
// node with its own copy of the store on etcd: one node accepts, and the
// other, whose commit conflicts with the winner's step and finds the code
// used when judged again, sends nothing (answered_elsewhere) rather than
// a Reject the gateway may take first. (A copy whose node has seen the
// winner's step before judging it, which can only be after the winner's
// commit, is refused as a replay.) The same code sent again later, from
// elsewhere, is a replay, refused.
func TestClusterAppendAtBothNodes(t *testing.T) {
	f, a, b := etcdNodes(t)
	ctx := context.Background()
	sent, silent := 0, 0
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
			case r.Unanswered:
				silent++
			case r.Reason == "totp_replay":
				sent++
			default:
				t.Errorf("round %d: the other copy got %s (%s)", round, r.Decision, r.Reason)
			}
		}
		if accepts != 1 {
			t.Fatalf("round %d: %d Accepts", round, accepts)
		}
		later := appendLogin("alice", f.code(), netip.AddrFrom4([4]byte{10, 4, 0, byte(1 + round)}))
		if r := a.Decide(ctx, later); r.Decision != policy.Reject || r.Unanswered || r.Reason != "totp_replay" {
			t.Fatalf("round %d: the code again later: got %s (%s) unanswered %v, want a Reject for a replay", round, r.Decision, r.Reason, r.Unanswered)
		}
	}
	t.Logf("the copy that lost: %d unanswered, %d refused as a replay", silent, sent)
	if silent <= sent {
		t.Errorf("the copy that lost went unanswered in %d rounds and was refused with an answer in %d", silent, sent)
	}
}
