package policy

import "github.com/otpgate/otpgate/live"

// ChallengeOf returns the challenge waiting under state, for tests.
func (e *Engine) ChallengeOf(state string) (live.Challenge, bool) {
	return e.challenges.Get(state)
}
