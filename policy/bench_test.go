package policy_test

import (
	"context"
	"testing"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/policy"
)

// BenchmarkTOTPFlow is one TOTP login through the engine, on a real
// store: the challenge, then the code, accepted, its step written to the
// store's log of used steps.
// Each flow is a step later than the one before, so that no code is a
// replay; ivan's tenant lets no proven IP through without a code. The
// figures to watch are the allocations (-benchmem) and the CPU; each flow
// being a new step, each commits the store's file (fence.go), so the time
// per flow is mostly the disk's syncs.
func BenchmarkTOTPFlow(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.advance(otp.Period)
		ch := f.engine.Decide(ctx, login("ivan", ipX))
		if ch.Decision != policy.Challenge {
			b.Fatalf("login: got %s %s, want a challenge", ch.Decision, ch.Reason)
		}
		res := f.engine.Decide(ctx, answer("ivan", ch.State, f.code(), ipX))
		if res.Decision != policy.Accept {
			b.Fatalf("answer: got %s %s, want an Accept", res.Decision, res.Reason)
		}
	}
}
