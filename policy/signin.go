package policy

import (
	"context"
	"slices"
	"sync"
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
//     wrong answers count on the sign-in page's own counter (signInGuard),
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
	if e.signInGuard.locked(name, now) {
		return Result{Decision: Reject, Reason: "sign_in_locked", User: name, Tenant: t.Name, Message: t.Messages.Locked}, nil
	}
	id, err := e.newState()
	if err != nil {
		return Result{User: name}, err
	}
	// A question that cannot be kept (the challenges' store unreachable, as
	// etcd down in a cluster) could not be answered: fail closed, alike for
	// every name (Decide answers the sign-in tenant's Unavailable).
	err = e.challenges.Put(live.Challenge{
		ID: id, User: name, Client: req.Client, Method: MethodTOTP, EndUserIP: ipKey(req.IP),
		Expires: now.Add(t.CodeTTL), NoFirstFactor: true,
	})
	if err != nil {
		return Result{User: name, Tenant: t.Name}, err
	}
	return Result{Decision: Challenge, Reason: "challenge_code_only", Method: MethodTOTP, User: name, Tenant: t.Name,
		State: id, Message: t.Messages.SignInCode}, nil
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
	// The try is counted before it is judged, so that answers posted at
	// once cannot together get past the lockout; a proved code forgets it.
	if !e.signInGuard.try(name, now, t.Lockout) {
		return Result{Decision: Reject, Reason: "sign_in_locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, nil
	}
	r, err := e.db.ReadUser(name)
	u := r.User
	if err != nil && !isNotFound(err) {
		e.challenges.Put(ch) // the answer was not looked at: it may come again
		return Result{}, err
	}
	var res Result
	if err == nil && !now.Before(u.LockedUntil) {
		if res, err = e.prove(req, t, ch, r); err != nil {
			return res, err
		}
	} else {
		o, err := e.judge(req, t, store.User{Name: name}, ch)
		if err != nil {
			return Result{}, err
		}
		res = e.settle(o)
	}
	if res.Decision == Accept {
		e.signInGuard.passed(name)
		res.Tenant = tenantName(u, req) // whose pre-approval window applies
		return res, nil
	}
	if e.signInGuard.locked(name, now) {
		return Result{Decision: Reject, Reason: "sign_in_locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, nil
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

// signInFailures locks a name out of the sign-in page (only) after too
// many wrong codes without a first factor. It lives in memory: a restart
// forgets it, as it forgets the challenges. The zero value is ready.
//
// It tracks at most maxSignInNames names. A record goes once its last
// failure is outside its lockout window and its lock, if any, has ended.
// When the table is full of records that still count, the oldest unlocked
// ones (by last failure) make room for new names, so that a flood of names
// cannot shut the page for everyone; a locked record stays until its lock
// ends, so that a flood cannot unlock a name either. Only when every
// record is a lock still running is a new name refused (fail closed) until
// the first of them ends.
type signInFailures struct {
	mu    sync.Mutex
	names map[string]*signInRecord
	// full, when set, is when the first lock ends: a table holding only
	// running locks refuses new names until then without looking again.
	full time.Time
}

type signInRecord struct {
	failures    []time.Time
	window      time.Duration // the lockout window the failures count in
	lockedUntil time.Time
}

// spent reports whether r locks nothing now and holds no failure that
// still counts.
func (r *signInRecord) spent(now time.Time) bool {
	return !now.Before(r.lockedUntil) && (len(r.failures) == 0 || now.Sub(r.failures[len(r.failures)-1]) >= r.window)
}

// maxSignInNames bounds the names tracked.
const maxSignInNames = 100000

// defaultSignInLockout applies where the tenant's lockout is off: the
// sign-in page always stops guessing.
var defaultSignInLockout = Lockout{Failures: 5, Window: 15 * time.Minute, Duration: 15 * time.Minute}

func (g *signInFailures) locked(name string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.names[name]
	if r == nil {
		return len(g.names) >= maxSignInNames && !g.makeRoom(now)
	}
	return now.Before(r.lockedUntil)
}

// try counts a try at name as a wrong answer before it is judged, and
// reports whether it may be judged: not when the name is locked out of the
// sign-in page, nor when no more names can be tracked. The try that
// reaches the lockout is still judged; a try that proves its code is
// forgotten with passed.
func (g *signInFailures) try(name string, now time.Time, lock Lockout) bool {
	if lock.Failures <= 0 {
		lock = defaultSignInLockout
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.names == nil {
		g.names = map[string]*signInRecord{}
	}
	r := g.names[name]
	if r == nil {
		if len(g.names) >= maxSignInNames && !g.makeRoom(now) {
			return false
		}
		r = &signInRecord{}
		g.names[name] = r
	}
	if now.Before(r.lockedUntil) {
		return false
	}
	recent := r.failures[:0]
	for _, f := range r.failures {
		if now.Sub(f) < lock.Window {
			recent = append(recent, f)
		}
	}
	r.failures, r.window = append(recent, now), lock.Window
	if len(r.failures) >= lock.Failures {
		r.failures, r.lockedUntil = nil, now.Add(lock.Duration)
	}
	return true
}

// passed forgets the wrong answers of name, as a proved code does at a
// gateway.
func (g *signInFailures) passed(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.names, name)
}

// makeRoom frees a tenth of the table, and reports whether it freed
// anything; g.mu is held. It drops spent records first, then the unlocked
// records whose last failure is oldest. A sweep costs a pass over the
// table, once per tenth of it filled again.
func (g *signInFailures) makeRoom(now time.Time) bool {
	if now.Before(g.full) {
		return false
	}
	var unlocked []*signInRecord
	byRecord := map[*signInRecord]string{}
	firstEnd := time.Time{}
	for name, r := range g.names {
		switch {
		case r.spent(now):
			delete(g.names, name)
		case now.Before(r.lockedUntil):
			if firstEnd.IsZero() || r.lockedUntil.Before(firstEnd) {
				firstEnd = r.lockedUntil
			}
		default:
			unlocked = append(unlocked, r)
			byRecord[r] = name
		}
	}
	target := maxSignInNames - maxSignInNames/10
	if excess := len(g.names) - target; excess > 0 && len(unlocked) > 0 {
		slices.SortFunc(unlocked, func(a, b *signInRecord) int {
			return a.failures[len(a.failures)-1].Compare(b.failures[len(b.failures)-1])
		})
		for _, r := range unlocked[:min(excess, len(unlocked))] {
			delete(g.names, byRecord[r])
		}
	}
	if len(g.names) >= maxSignInNames {
		g.full = firstEnd // every record a running lock
		return false
	}
	return true
}
