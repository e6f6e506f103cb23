package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/store"
)

// answer decides a reply to a challenge (PRODUCT.md step 4). The State is
// used up first, so a second copy of the answer finds nothing; what a
// proved code changes (the TOTP step, an enrolment, the proven IP) is
// then written in one transaction, or not at all.
func (e *Engine) answer(ctx context.Context, req Request) (Result, error) {
	name := store.NormalizeName(req.User)
	word := strings.ToLower(strings.TrimSpace(req.Password))
	ch, err := e.challenges.Take(req.State, name, req.Client)
	switch {
	case errors.Is(err, live.ErrNotFound):
		return Result{User: name, Decision: Reject, Reason: "unknown_state", Message: e.messages(req.Tenant).CodeExpired}, nil
	case err != nil:
		// Not this user's or this gateway's challenge: it stays for its owner.
		return Result{User: name, Decision: Reject, Reason: "state_mismatch", Message: e.messages(req.Tenant).CodeExpired}, nil
	}
	var u store.User
	err = e.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if isNotFound(err) {
		return Result{User: name, Decision: Reject, Reason: "unknown_user", Message: e.messages(req.Tenant).BadPassword}, nil
	}
	if err != nil {
		e.challenges.Put(ch) // the answer was not looked at: it may come again
		return Result{User: name}, fmt.Errorf("answer challenge: %w", err)
	}
	t := e.rules().tenants[tenantName(u, req)]
	if t == nil {
		return Result{User: name, Decision: Reject, Reason: "unknown_tenant", Message: DefaultMessages().Unavailable}, nil
	}
	now := e.now()
	if now.Before(u.LockedUntil) {
		return Result{User: name, Decision: Reject, Reason: "locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, nil
	}
	var res Result
	if now.Before(ch.Expires) && (ch.Enrol == enrolAskPhone || word == "resend" || IsMethod(word)) {
		res, err = e.turn(ctx, turn{t: t, u: u, old: ch, word: word, input: req.Password})
	} else {
		res, err = e.prove(req, t, ch)
	}
	res.User = name
	if err != nil {
		return res, fmt.Errorf("answer challenge: %w", err)
	}
	return res, nil
}

// prove checks the answer to ch against the user as stored now, writes
// what follows from it, and puts the challenge back under a new State when
// the user may try again.
func (e *Engine) prove(req Request, t *Tenant, ch live.Challenge) (Result, error) {
	var res Result
	var again *live.Challenge
	err := e.db.Update(func(tx *store.Tx) error {
		res, again = Result{}, nil
		u, err := tx.User(ch.User)
		if isNotFound(err) {
			res = reject("unknown_user", t.Messages.BadPassword)
			return nil
		}
		if err != nil {
			return err
		}
		if e.now().Before(u.LockedUntil) {
			res = Result{Decision: Reject, Reason: "locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}
			return nil
		}
		res, again, err = e.check(tx, req, t, u, ch)
		return err
	})
	if err != nil {
		// Nothing was written: the code may be tried again.
		e.challenges.Put(ch)
		return Result{}, err
	}
	if again != nil {
		e.challenges.Put(*again)
	}
	return res, nil
}

// turn is a challenge answered with "resend" or a method's name.
type turn struct {
	t     *Tenant
	u     store.User
	old   live.Challenge
	word  string
	input string // the answer as typed, for a phone number
}

// turn sends a new code for "resend", or moves the challenge to the method
// named (PRODUCT.md step 4). Wrong answers so far still count. When it
// cannot, the old code stays valid under a new State and the user is told
// why.
func (e *Engine) turn(ctx context.Context, c turn) (Result, error) {
	defer e.lockUser(c.u.Name)()

	t, m, old := c.t, c.t.Messages, c.old
	if old.Enrol == enrolAskPhone {
		return e.enrolPhone(ctx, c)
	}
	method, reason := c.word, "switch"
	if c.word == "resend" || c.word == old.Method {
		method, reason = old.Method, "resend"
	}
	now := e.now()
	switch {
	case method != old.Method && (!t.allows(method) || !e.usable(method, c.u)):
		return e.keep(t, old, "method_unavailable", fill(m.MethodUnavailable, "{method}", m.methodName(method)))
	case reason == "resend" && method == MethodTOTP:
		return e.keep(t, old, "resend_totp", m.ResendTOTP)
	case reason == "resend" && now.Sub(old.Sent) < t.ResendCooldown:
		wait := (t.ResendCooldown - now.Sub(old.Sent) + time.Second - 1) / time.Second
		return e.keep(t, old, "resend_cooldown", fill(m.ResendWait, "{seconds}", strconv.Itoa(int(wait))))
	}
	ch := live.Challenge{
		User: old.User, Client: old.Client, Method: method, EndUserIP: old.EndUserIP,
		Attempts: old.Attempts, Expires: now.Add(t.CodeTTL),
	}
	if method == MethodTOTP && c.u.PendingTOTP != nil {
		ch.Enrol = enrolLink
	}
	out, err := e.issue(ctx, t, c.u, &ch)
	switch {
	case err != nil:
		return Result{}, err
	case out.refused != "":
		return e.keep(t, old, out.refused, refusalMessage(m, out.refused))
	case out.failed:
		return e.keep(t, old, "delivery_failed", m.DeliveryFailed)
	}
	e.challenges.Put(ch)
	msg := prompt(m, ch)
	if reason == "resend" && method != MethodVoice {
		msg = fill(m.CodeResent, "{destination}", ch.Destination)
	}
	return Result{Decision: Challenge, Reason: reason, Method: method, Provider: out.provider,
		Tenant: t.Name, State: ch.ID, Message: msg}, nil
}

// keep puts the old challenge back under a new State, so that the code the
// user already has still works, and says why nothing new was sent.
func (e *Engine) keep(t *Tenant, old live.Challenge, reason, why string) (Result, error) {
	id, err := e.newState()
	if err != nil {
		return Result{}, err
	}
	old.ID = id
	e.challenges.Put(old)
	return Result{Decision: Challenge, Reason: reason, Method: old.Method, Tenant: t.Name,
		State: id, Message: join(why, prompt(t.Messages, old))}, nil
}

// enrolPhone takes the answer to "enter your mobile number": a number
// gets a code sent to it, which when proved saves the number.
func (e *Engine) enrolPhone(ctx context.Context, c turn) (Result, error) {
	t, m, old := c.t, c.t.Messages, c.old
	number, err := phone.Parse(c.input, t.CountryCode)
	if err != nil {
		old.Attempts++
		if old.Attempts >= t.MaxAttempts {
			return Result{Decision: Reject, Reason: "bad_phone_final", Method: old.Method, Tenant: t.Name, Message: m.TooManyWrong}, nil
		}
		return e.keep(t, old, "bad_phone", m.BadPhone)
	}
	ch := live.Challenge{
		User: old.User, Client: old.Client, Method: MethodSMS, EndUserIP: old.EndUserIP,
		Attempts: old.Attempts, Expires: e.now().Add(t.CodeTTL), Enrol: enrolPhone, To: number,
	}
	out, err := e.issue(ctx, t, c.u, &ch)
	switch {
	case err != nil:
		return Result{}, err
	case out.refused != "":
		return e.keep(t, old, out.refused, refusalMessage(m, out.refused))
	case out.failed:
		return e.keep(t, old, "delivery_failed", m.DeliveryFailed)
	}
	e.challenges.Put(ch)
	return Result{Decision: Challenge, Reason: "challenge", Method: MethodSMS, Provider: out.provider,
		Tenant: t.Name, State: ch.ID, Message: prompt(m, ch)}, nil
}

// check compares the code with the challenge and writes what follows from
// it within tx: on success the enrolment it completes, the TOTP step, the
// proven and remembered IP; on failure the lockout past the tenant's
// limit. When the user may try again it returns the challenge, its attempt
// counted, under a new State, for the caller to put in the table once tx
// is committed.
func (e *Engine) check(tx *store.Tx, req Request, t *Tenant, u store.User, ch live.Challenge) (Result, *live.Challenge, error) {
	now := e.now()
	m := t.Messages
	res := Result{Tenant: t.Name, Method: ch.Method}
	if now.After(ch.Expires) {
		res.Decision, res.Reason, res.Message = Reject, "code_expired", m.CodeExpired
		return res, nil, nil
	}
	ok, reason, err := e.verify(&u, ch, req.Password, now)
	if err != nil {
		return res, nil, err
	}
	if ok {
		res.Decision, res.Reason = Accept, reason
		switch reason {
		case "recovery_code":
			res.Message = fill(m.RecoveryUsed, "{left}", strconv.Itoa(len(u.Recovery)))
		case "totp_linked":
			res.Message = m.TOTPLinked
		}
		if ch.Enrol == enrolPhone {
			u.Phone = ch.To
		}
		if u.Method == "" && reason != "recovery_code" {
			u.Method = ch.Method // enrolled at login
		}
		u.Failures = nil
		if ip := ch.EndUserIP; ip.IsValid() {
			if t.ReconnectWindow > 0 {
				if err := tx.PutProven(u.Name, ipKey(ip), now); err != nil {
					return res, nil, err
				}
			}
			if t.RememberIPFor > 0 && !t.inOffice(ip) && !containsAddr(u.HomeIPs, ip) {
				u.Remembered = remember(u.Remembered, ipKey(ip), now, t.RememberIPFor, t.MaxRememberedIPs)
			}
		}
		return res, nil, tx.PutUser(u)
	}
	ch.Attempts++
	if lock := t.Lockout; lock.Failures > 0 {
		recent := u.Failures[:0:0]
		for _, f := range u.Failures {
			if now.Sub(f) < lock.Window {
				recent = append(recent, f)
			}
		}
		u.Failures = append(recent, now)
		if len(u.Failures) >= lock.Failures {
			u.Failures, u.LockedUntil = nil, now.Add(lock.Duration)
			res.Decision, res.Reason, res.Message = Reject, "locked", m.Locked
			return res, nil, tx.PutUser(u)
		}
		if err := tx.PutUser(u); err != nil {
			return res, nil, err
		}
	}
	left := t.MaxAttempts - ch.Attempts
	if left <= 0 {
		res.Decision, res.Reason, res.Message = Reject, reason+"_final", m.TooManyWrong
		return res, nil, nil
	}
	// A new State for the next round: each State answers once.
	id, err := e.newState()
	if err != nil {
		return res, nil, err
	}
	ch.ID = id
	res.Decision, res.Reason, res.State = Challenge, reason, id
	res.Message = fill(m.WrongCode, "{tries}", strconv.Itoa(left))
	return res, &ch, nil
}

// verify checks code for the challenge, or as one of u's recovery codes,
// and changes u as a success requires (the TOTP step used, the drift
// learned, a linked TOTP made active, a recovery code spent).
func (e *Engine) verify(u *store.User, ch live.Challenge, code string, now time.Time) (ok bool, reason string, err error) {
	if i := e.matchRecovery(*u, code); i >= 0 {
		u.Recovery = slices.Delete(slices.Clone(u.Recovery), i, i+1)
		return true, "recovery_code", nil
	}
	switch ch.Method {
	case MethodTOTP:
		tot := u.TOTP
		if ch.Enrol == enrolLink {
			tot = u.PendingTOTP
		}
		if tot == nil {
			return false, "no_totp", nil
		}
		step, reason, err := matchTOTP(e.key, u.Name, tot, code, now)
		if err != nil || reason != "" {
			return false, reason, err
		}
		if ch.Enrol == enrolLink {
			activate(u, step, now)
			return true, "totp_linked", nil
		}
		t := *tot
		t.LastStep, t.Drift = step, int(step-otp.Step(now))
		u.TOTP = &t
		return true, "totp_ok", nil
	default:
		if ch.CodeHash != nil && e.key.Equal(ch.CodeHash, codeContext(ch.Salt), code) {
			return true, "code_ok", nil
		}
		return false, "wrong_code", nil
	}
}

// remember adds ip to the remembered IPs until now+keep, drops the
// expired, and keeps the newest max (all when max is zero).
func remember(list []store.RememberedIP, ip netip.Addr, now time.Time, keep time.Duration, max int) []store.RememberedIP {
	out := []store.RememberedIP{}
	for _, r := range list {
		if r.IP != ip && now.Before(r.Until) {
			out = append(out, r)
		}
	}
	out = append(out, store.RememberedIP{IP: ip, Until: now.Add(keep)})
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// codeContext keys the hash of a sent code to its challenge's salt.
func codeContext(salt string) string { return "code:" + salt }

// totpContext binds a sealed TOTP secret to its user.
func totpContext(user string) string { return "totp:" + user }
