package policy

import (
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/store"
)

// ChallengeOf returns the challenge waiting under state, for tests.
func (e *Engine) ChallengeOf(state string) (live.Challenge, bool) {
	return e.challenges.(*live.Table).Get(state)
}

// AnswerAfter answers a challenge as Decide does, but runs meanwhile
// between reading the user and judging the answer: for tests of a store
// that changes in between.
func (e *Engine) AnswerAfter(req Request, meanwhile func()) (Result, error) {
	name := store.NormalizeName(req.User)
	ch, err := e.challenges.Take(req.State, name, req.Client)
	if err != nil {
		return Result{}, err
	}
	r, err := e.db.ReadUser(name)
	if err != nil {
		return Result{}, err
	}
	meanwhile()
	return e.prove(req, e.rules().tenants[tenantName(r.User, req)], ch, r)
}
