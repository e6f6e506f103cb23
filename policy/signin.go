package policy

import (
	"context"
	"errors"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/store"
)

// FirstFactorNone is the sign-in page's mode where no password can be
// checked (the gateway's directory is out of otpgate's reach): the page
// then asks every name for a code from an authenticator app or a recovery
// code, and nothing else.
const FirstFactorNone = "none"

// The sign-in page (Request.SignIn) is a way to pre-approve logins through
// gateways that cannot prompt, so it must never be a way around the second
// factor. Its rules, all here:
//
//   - A trusted place (office network, home, remembered or reconnect IP,
//     machine) skips nothing: the user always proves a code, and only a
//     code proved in the same sign-in pre-approves (signedIn).
//   - With a first factor otpgate checks (local, ldap, radius), the
//     password comes first; until it is proved every name gets the same
//     answer and nothing is sent. Wrong codes after it count toward the
//     lockout as at any gateway.
//   - Without one (codeOnly), every name is asked the same question, an
//     authenticator app's code or a recovery code; nothing is ever sent,
//     names otpgate does not know get a question no answer proves, and
//     wrong answers count on the sign-in page's own counter (signInTry),
//     which stops guessing there for a while but never locks the user out
//     of their logins.

// codeOnly reports whether a sign-in has no first factor otpgate checks.
func codeOnly(req Request) bool {
	switch req.FirstFactor {
	case FirstFactorLocal, FirstFactorLDAP, FirstFactorRADIUS:
		return false
	}
	return true
}

// askCodeOnly starts a sign-in without a first factor: the same question
// for every name, asked without reading the user, so that the answer tells
// nothing about them, and nothing sent.
func (e *Engine) askCodeOnly(req Request) (Result, error) {
	name := store.NormalizeName(req.User)
	t := e.rules().tenants[req.Tenant]
	if t == nil {
		return Result{Decision: Reject, Reason: "unknown_tenant", User: name, Message: DefaultMessages().Unavailable}, nil
	}
	now := e.now()
	locked, err := e.signInLocked(name, now)
	if err != nil {
		return Result{User: name, Tenant: t.Name}, err
	}
	if locked {
		return Result{Decision: Reject, Reason: "sign_in_locked", User: name, Tenant: t.Name, Message: t.Messages.Locked}, nil
	}
	id, err := e.newState()
	if err != nil {
		return Result{User: name}, err
	}
	// A question that cannot be kept (the challenges' store unreachable, as
	// etcd down in a cluster) could not be answered: fail closed, alike for
	// every name (Decide answers the sign-in tenant's Unavailable).
	ch := live.Challenge{
		ID: id, User: name, Client: req.Client, Method: MethodTOTP, EndUserIP: ipKey(req.IP),
		Expires: now.Add(t.CodeTTL), NoFirstFactor: true,
	}
	if err := e.challenges.Put(&ch); err != nil {
		return Result{User: name, Tenant: t.Name}, err
	}
	return Result{Decision: Challenge, Reason: "challenge_code_only", Method: MethodTOTP, User: name, Tenant: t.Name,
		State: ch.ID, Message: t.Messages.SignInCode}, nil
}

// answerCodeOnly judges the answer to a question askCodeOnly asked. It is
// judged under the sign-in page's tenant, so that the words and the tries
// left are the same for every name; a name otpgate does not know, or a
// user locked out, is judged as a user with no code at all.
func (e *Engine) answerCodeOnly(req Request, ch live.Challenge) (Result, error) {
	name := ch.User
	t := e.rules().tenants[req.Tenant]
	if t == nil {
		return Result{Decision: Reject, Reason: "unknown_tenant", Message: DefaultMessages().Unavailable}, nil
	}
	now := e.now()
	// A sealed State is used up first, so that of answers to it posted at
	// once one is counted and judged, for a name otpgate knows or not.
	switch err := e.claim(ch); {
	case errors.Is(err, store.ErrClaimed):
		return Result{Decision: Reject, Reason: "unknown_state", Tenant: t.Name, Message: t.Messages.CodeExpired}, nil
	case err != nil:
		return Result{Tenant: t.Name}, err
	}
	if ch.Claim.ID != "" {
		// Used up: nothing to claim again, nor to put back (see prove).
		ch.ID, ch.Claim = "", store.Claim{}
	}
	putBack := func() {
		if ch.ID != "" {
			e.putBack(ch) // the answer was not looked at: it may come again
		}
	}
	// The try is counted before it is judged, so that answers posted at
	// once cannot together get past the lockout; a proved code forgets it.
	ok, err := e.signInTry(name, now, t.Lockout)
	if err != nil {
		putBack()
		return Result{Tenant: t.Name}, err
	}
	if !ok {
		return Result{Decision: Reject, Reason: "sign_in_locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, nil
	}
	r, err := e.db.ReadUser(name)
	u := r.User
	if err != nil && !isNotFound(err) {
		putBack()
		return Result{}, err
	}
	var res Result
	if err == nil && !now.Before(u.LockedUntil) {
		if res, err = e.prove(req, t, ch, r); err != nil {
			return res, err
		}
	} else {
		o, err := e.judge(req, t, store.Read{User: store.User{Name: name}}, ch)
		if err != nil {
			return Result{}, err
		}
		// What a known name's judging ends with (prove's CommitIf, even
		// with nothing to write: in a cluster a round trip to etcd), so
		// that the time of the answer tells nothing of the name. The
		// name's record is absent (or locked): a conflict means nothing.
		if err := e.db.CommitIf(r, nil); err != nil && !errors.Is(err, store.ErrConflict) {
			return Result{Tenant: t.Name}, err
		}
		res = e.settle(o)
	}
	if res.Decision == Accept {
		if err := e.signInPassed(name, now); err != nil {
			return Result{Tenant: t.Name}, err
		}
		res.Tenant = tenantName(u, req) // whose pre-approval window applies
		return res, nil
	}
	if locked, err := e.signInLocked(name, now); err != nil || locked {
		return Result{Decision: Reject, Reason: "sign_in_locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, err
	}
	return res, nil
}

// signInSecondFactor asks for a code after a password proved on the
// sign-in page. No trusted place lets the user through, and a user who has
// no code to prove gets nothing: pre-approval follows a proved code only.
func (e *Engine) signInSecondFactor(ctx context.Context, req Request, t *Tenant, u store.User, known bool) Result {
	m := t.Messages
	switch {
	case !known:
		return reject("unknown_user", m.BadPassword)
	case e.now().Before(u.LockedUntil):
		// Told only now, after the password: until then a locked user's
		// name gets the same answer as any other.
		return reject("locked", m.Locked)
	}
	methods := e.methods(t, u)
	if len(methods) == 0 {
		return reject("no_second_factor", m.NoSecondFactor)
	}
	res, err := e.challenge(ctx, req, t, u, methods)
	if err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "method", methods[0], "err", err)
		return Result{Decision: Reject, Reason: "error", Method: methods[0], Message: m.Unavailable}
	}
	return res
}

// signedIn completes a sign-in's decision: an Accept pre-approves the
// user, and only an answer to a challenge (a code proved in this sign-in)
// can be one.
func (e *Engine) signedIn(ctx context.Context, req Request, res Result) Result {
	if res.Decision != Accept {
		return res
	}
	if req.State == "" {
		e.log.ErrorContext(ctx, "a sign-in was accepted without a code; refused", "user", res.User, "reason", res.Reason)
		return Result{Decision: Reject, Reason: "error", User: res.User, Tenant: res.Tenant, Message: e.messages(res.Tenant, req.Tenant).Unavailable}
	}
	t := e.rules().tenants[res.Tenant]
	if t == nil || t.PreapprovalWindow <= 0 || req.SelfService {
		return res
	}
	if err := e.preapprove(res.User, t); err != nil {
		e.log.ErrorContext(ctx, "pre-approval failed", "user", res.User, "err", err)
		return Result{Decision: Reject, Reason: "error", User: res.User, Tenant: res.Tenant, Message: t.Messages.Unavailable}
	}
	res.Reason += "_preapproved"
	return res
}

// The sign-in page's count of wrong codes without a first factor is kept
// per name in the store (store.SignInFailures), so that every node of a
// cluster counts the same tries: a guesser who has used them up at one
// node gets none at another. A try is one small write, on a page that
// takes a few posts a minute per address. A record goes once its last
// failure is outside its lockout window and its lock, if any, has ended:
// the try that finds it spent deletes it, and the store's Prune removes
// the others, so the records at any time are at most the names tried
// within the last window and lock, which the per-address limit of posts
// bounds; no record is ever dropped early, so a flood of names neither
// shuts the page nor unlocks a name.

// defaultSignInLockout applies where the tenant's lockout is off: the
// sign-in page always stops guessing.
var defaultSignInLockout = Lockout{Failures: 5, Window: 15 * time.Minute, Duration: 15 * time.Minute}

// signInLocked reports whether name is locked out of the sign-in page.
func (e *Engine) signInLocked(name string, now time.Time) (locked bool, err error) {
	err = e.db.View(func(tx *store.Tx) error {
		locked = now.Before(tx.SignInFailures(name).LockedUntil)
		return nil
	})
	return locked, err
}

// signInTry counts a try at name as a wrong answer before it is judged,
// and reports whether it may be judged: not when the name is locked out
// of the sign-in page. The try that reaches the lockout is still judged;
// a try that proves its code is forgotten with signInPassed. The count is
// read and written in one transaction, which in a cluster commits only if
// no node has counted meanwhile.
func (e *Engine) signInTry(name string, now time.Time, lock Lockout) (ok bool, err error) {
	if lock.Failures <= 0 {
		lock = defaultSignInLockout
	}
	err = e.db.Update(func(tx *store.Tx) error {
		f := tx.SignInFailures(name)
		if ok = !now.Before(f.LockedUntil); !ok {
			return nil
		}
		recent := f.Failures[:0]
		for _, t := range f.Failures {
			if now.Sub(t) < lock.Window {
				recent = append(recent, t)
			}
		}
		f.Failures, f.Window = append(recent, now), lock.Window
		if len(f.Failures) >= lock.Failures {
			f.Failures, f.LockedUntil = nil, now.Add(lock.Duration)
		}
		return tx.PutSignInFailures(name, f, now)
	})
	return ok && err == nil, err
}

// signInPassed forgets the wrong answers of name, as a proved code does
// at a gateway.
func (e *Engine) signInPassed(name string, now time.Time) error {
	return e.db.Update(func(tx *store.Tx) error {
		return tx.PutSignInFailures(name, store.SignInFailures{}, now)
	})
}
