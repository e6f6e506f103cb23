package policy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/policy"
)

// unreachableLock is a node whose lock for sending fails as a call to
// etcd does when etcd is out of reach: a deadline of that call's own.
type unreachableLock struct{ *live.Table }

func (unreachableLock) Sending(ctx context.Context, _ string) (func(), error) {
	return nil, fmt.Errorf("lock for sending: %w", context.DeadlineExceeded)
}

// TestSendingLockUnreachable: etcd out of reach at the lock for sending
// fails closed as any store failure does ("error", logged as a failed
// decision), and sends nothing; "busy" is only for a login that waited
// its time for another node that sends.
func TestSendingLockUnreachable(t *testing.T) {
	f := newFixture(t, func(c *policy.Config) { c.Challenges = unreachableLock{live.NewTable()} })
	got := f.engine.Decide(context.Background(), login("bob", ipX))
	check(t, got, want{policy.Reject, "error", msgs.Unavailable, "sms"})
	if n := len(f.sender.messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}
