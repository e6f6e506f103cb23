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
	case errors.Is(err, live.ErrTaken):
		return answeredElsewhere(name, "", e.messages(req.Tenant)), nil
	case errors.Is(err, live.ErrMismatch):
		// Not this user's or this gateway's challenge: it stays for its owner.
		return Result{User: name, Decision: Reject, Reason: "state_mismatch", Message: e.messages(req.Tenant).CodeExpired}, nil
	case err != nil:
		return Result{User: name}, fmt.Errorf("answer challenge: %w", err)
	}
	// A sealed State is taken by every answer to it; one that was claimed
	// (answered) before this answer came is unknown now. One claimed
	// since, or while this answer is judged, was claimed by the copy of
	// it at another node, at the same moment (answeredElsewhere).
	switch used, since, err := e.claimed(ch, req.arrived); {
	case err != nil:
		return Result{User: name}, fmt.Errorf("answer challenge: %w", err)
	case used && since:
		return answeredElsewhere(name, "", e.messages(req.Tenant)), nil
	case used:
		return Result{User: name, Decision: Reject, Reason: "unknown_state", Message: e.messages(req.Tenant).CodeExpired}, nil
	}
	if ch.NoFirstFactor {
		res, err := e.answerCodeOnly(req, ch)
		res.User = name
		return res, err
	}
	r, err := e.db.ReadUser(name)
	if isNotFound(err) {
		return Result{User: name, Decision: Reject, Reason: "unknown_user", Message: e.messages(req.Tenant).BadPassword}, nil
	}
	if err != nil {
		e.putBack(ch) // the answer was not looked at: it may come again
		return Result{User: name}, fmt.Errorf("answer challenge: %w", err)
	}
	u := r.User
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
		res, err = e.prove(req, t, ch, r)
	}
	res.User = name
	if err != nil {
		return res, fmt.Errorf("answer challenge: %w", err)
	}
	return e.withReply(ctx, res, req, t, u, Identity{Reply: ch.Reply, Groups: ch.Groups}), nil
}

// prove judges the answer to ch against the user as read in r, and
// writes what follows only if neither their record nor their newest TOTP
// step has changed since: the store compares both in the commit
// (store.DB.CommitIf), on one node or across a cluster. If either has
// changed, the answer is judged once more against the user as they are
// now. A sealed State's single use (ch.Claim) is claimed in the same
// commit, whatever the answer comes to: of two answers at once, the
// second finds it claimed and gets no answer (answeredElsewhere), as does
// a code whose step was used since the answer came (a code in the
// password, sent to two nodes at once). The
// challenge goes back under a new State when the user may try again, and
// as it was when nothing could be written (unless it was made up for this
// answer: ch.ID empty).
func (e *Engine) prove(req Request, t *Tenant, ch live.Challenge, r store.Read) (Result, error) {
	putBack := func() {
		if ch.ID != "" {
			e.putBack(ch) // best effort: the caller fails closed anyway
		}
	}
	for try := 1; ; try++ {
		o, err := e.judge(req, t, r, ch)
		if err != nil {
			putBack()
			return Result{}, err
		}
		if ch.ID == "" && strings.HasPrefix(o.res.Reason, "totp_replay") && r.StepUsedAfter(req.arrived) {
			// A code typed after the password, with no State of its
			// own, whose step was used since it came: by the same code,
			// sent to another node too. (An answer under a State is
			// told from its copy by the State's claim: the same code
			// under another State is another login, refused.)
			return answeredElsewhere("", t.Name, t.Messages), nil
		}
		err = e.db.CommitIf(r, o.write())
		if err == nil {
			return e.settleChecked(o)
		}
		if errors.Is(err, store.ErrClaimed) {
			return answeredElsewhere("", t.Name, t.Messages), nil
		}
		if !errors.Is(err, store.ErrConflict) || try == maxJudged {
			putBack()
			return Result{}, err
		}
		r, err = e.db.ReadUser(ch.User)
		switch {
		case isNotFound(err):
			return reject("unknown_user", t.Messages.BadPassword), nil
		case err != nil:
			putBack()
			return Result{}, err
		case e.now().Before(r.User.LockedUntil):
			return Result{Decision: Reject, Reason: "locked", Tenant: t.Name, Method: ch.Method, Message: t.Messages.Locked}, nil
		}
	}
}

// maxJudged is how often an answer is judged before the user's record
// changing every time is an error: twice is enough but for a user who
// answers several challenges at the same moment.
const maxJudged = 3

// outcome is what an answer to a challenge comes to: the decision and what
// to remember of it.
type outcome struct {
	res    Result
	user   *store.User     // the user as changed by the answer; nil when unchanged
	name   string          // whose answer it is
	step   int64           // the TOTP step used, or 0
	far    int64           // a TOTP step told to be far, never to be accepted; or 0
	until  time.Time       // when no window of codes reaches step any more
	proven netip.Addr      // proven at the time in at, when valid
	at     time.Time       //
	again  *live.Challenge // the challenge, for another try, under a new State
	claim  store.Claim     // the answered State's single use, when Take left it to the commit
}

// write returns what stores o within a transaction, or nil when o
// writes nothing.
func (o outcome) write() func(*store.Tx) error {
	if o.claim.ID == "" && o.user == nil && o.step == 0 && o.far == 0 && !o.proven.IsValid() {
		return nil
	}
	return func(tx *store.Tx) error {
		if o.claim.ID != "" {
			if err := tx.Claim(o.claim); err != nil {
				return err
			}
		}
		if o.user != nil {
			if err := tx.PutUser(*o.user); err != nil {
				return err
			}
		}
		if o.step != 0 {
			if err := tx.UseStep(o.name, o.step, o.until); err != nil {
				return err
			}
		}
		if o.far != 0 {
			if err := tx.AddFarStep(o.name, o.far, stepGone(o.far), o.at); err != nil {
				return err
			}
		}
		if o.proven.IsValid() {
			return tx.PutProven(o.name, o.proven, o.at)
		}
		return nil
	}
}

// settle puts the challenge of another try in the table and returns the
// decision.
func (e *Engine) settle(o outcome) Result {
	res, _ := e.settleChecked(o)
	return res
}

// settleChecked is settle, failing when the challenge of another try
// cannot be kept (etcd out of reach): its State would answer nothing.
func (e *Engine) settleChecked(o outcome) (Result, error) {
	if o.again != nil {
		if err := e.challenges.Put(o.again); err != nil {
			return Result{}, err
		}
		o.res.State = o.again.ID
	}
	return o.res, nil
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
	t, m, old := c.t, c.t.Messages, c.old
	// Whatever follows answers under a new State: the old one is used up.
	switch err := e.claim(old); {
	case errors.Is(err, store.ErrClaimed):
		return answeredElsewhere("", t.Name, t.Messages), nil
	case err != nil:
		return Result{}, err
	}
	unlock, ok := e.lockUser(c.u.Name)
	if !ok {
		return e.keep(t, old, "busy", m.DeliveryFailed)
	}
	defer unlock()
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
		Attempts: old.Attempts, Expires: now.Add(t.CodeTTL), Reply: old.Reply, Groups: old.Groups,
	}
	if method == MethodTOTP && c.u.PendingTOTP != nil {
		ch.Enrol = enrolLink
	}
	if old.Enrol == enrolPhone && method == old.Method {
		ch.Enrol, ch.To = enrolPhone, old.To // a resend goes to the number being enrolled
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
	if err := e.challenges.Put(&ch); err != nil {
		return Result{}, err
	}
	msg := prompt(m, ch)
	if reason == "resend" && method != MethodVoice {
		msg = fill(m.CodeResent, "{destination}", ch.Destination)
	}
	return Result{Decision: Challenge, Reason: reason, Method: method, Provider: out.provider,
		Tenant: t.Name, State: ch.ID, Message: msg}, nil
}

// putBack puts a challenge taken but not looked at back, so that its State
// answers again. A sealed one needs nothing: its State answers until it
// is claimed.
func (e *Engine) putBack(ch live.Challenge) {
	if ch.Claim.ID == "" {
		e.challenges.Put(&ch)
	}
}

// claimed reports whether ch's State has been claimed (see claim), and
// whether the claim may be newer than m (store.DB.Claimed); false for a
// State with nothing to claim.
func (e *Engine) claimed(ch live.Challenge, m store.Mark) (used, since bool, err error) {
	if ch.Claim.ID == "" {
		return false, false, nil
	}
	return e.db.Claimed(ch.Claim, m)
}

// answeredElsewhere is the answer to a State (or a code) that another
// answer took while this one came or was judged: the same answer, sent by
// a gateway to two nodes at once, whose other copy won. That copy's
// decision goes out; this one sends nothing (Unanswered), so that the
// gateway, which takes the first answer, never takes a Reject for a login
// that was accepted. A copy sent to one node only was answered there
// already.
func answeredElsewhere(user, tenant string, m Messages) Result {
	return Result{User: user, Tenant: tenant, Decision: Reject, Reason: "answered_elsewhere", Message: m.CodeExpired, Unanswered: true}
}

// claim uses up ch's State, when Take left that to the caller (a sealed
// State), in a transaction of its own; store.ErrClaimed when it had been.
func (e *Engine) claim(ch live.Challenge) error {
	if ch.Claim.ID == "" {
		return nil
	}
	return e.db.Update(func(tx *store.Tx) error { return tx.Claim(ch.Claim) })
}

// keep puts the old challenge back under a new State, so that the code the
// user already has still works, and says why nothing new was sent.
func (e *Engine) keep(t *Tenant, old live.Challenge, reason, why string) (Result, error) {
	id, err := e.newState()
	if err != nil {
		return Result{}, err
	}
	old.ID = id
	if err := e.challenges.Put(&old); err != nil {
		return Result{}, err
	}
	return Result{Decision: Challenge, Reason: reason, Method: old.Method, Tenant: t.Name,
		State: old.ID, Message: join(why, prompt(t.Messages, old))}, nil
}

// enrolPhone takes the answer to "enter your mobile number": a number
// gets a code sent to it, which when proved saves the number.
func (e *Engine) enrolPhone(ctx context.Context, c turn) (Result, error) {
	t, m, old := c.t, c.t.Messages, c.old
	number, err := phone.Parse(c.input, t.CountryCode)
	if err != nil {
		old.Attempts++
		if old.Attempts >= t.MaxAttempts {
			return Result{Decision: Reject, Reason: "bad_phone_final", Method: old.Method, Tenant: t.Name, Message: m.TooManyBadPhones}, nil
		}
		return e.keep(t, old, "bad_phone", m.BadPhone)
	}
	ch := live.Challenge{
		User: old.User, Client: old.Client, Method: MethodSMS, EndUserIP: old.EndUserIP,
		Attempts: old.Attempts, Expires: e.now().Add(t.CodeTTL), Enrol: enrolPhone, To: number,
		Reply: old.Reply, Groups: old.Groups,
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
	if err := e.challenges.Put(&ch); err != nil {
		return Result{}, err
	}
	return Result{Decision: Challenge, Reason: "challenge", Method: MethodSMS, Provider: out.provider,
		Tenant: t.Name, State: ch.ID, Message: prompt(m, ch)}, nil
}

// judge compares the code with the challenge and works out what follows
// from it: on success the enrolment it completes, the TOTP step, the
// proven and remembered IP; on failure the lockout past the tenant's
// limit, or the challenge, its attempt counted, under a new State for
// another try, and a TOTP step told to be far. It judges the user as
// read in r, with the steps they were told were far, and writes nothing.
func (e *Engine) judge(req Request, t *Tenant, r store.Read, ch live.Challenge) (outcome, error) {
	u := r.User
	now := e.now()
	m := t.Messages
	res := Result{Tenant: t.Name, Method: ch.Method}
	o := outcome{name: u.Name, at: now, claim: ch.Claim}
	if now.After(ch.Expires) {
		res.Decision, res.Reason, res.Message = Reject, "code_expired", m.CodeExpired
		o.res = res
		return o, nil
	}
	hadFailures := len(u.Failures) > 0
	ok, reason, step, err := e.verify(&u, r.FarStep, ch, req.Password, now)
	if err != nil {
		return o, err
	}
	if ok {
		// The record is written when more changes than the step used,
		// which goes to the store's list of steps (see store.Tx.UseStep).
		dirty := hadFailures || reason == "recovery_code" || reason == "totp_linked" || reason == "totp_resync"
		if step != 0 {
			o.step, o.until = step, stepGone(step)
		}
		res.Decision, res.Reason = Accept, reason
		switch reason {
		case "recovery_code":
			res.Message = fill(m.RecoveryUsed, "{left}", strconv.Itoa(len(u.Recovery)))
		case "totp_linked":
			res.Message = m.TOTPLinked
		}
		enrolled := reason == "totp_linked"
		if ch.Enrol == enrolPhone {
			u.Phone, dirty, enrolled = ch.To, true, true
		}
		if u.Method == "" && reason != "recovery_code" {
			u.Method, dirty, enrolled = ch.Method, true, true // enrolled at login
		}
		if enrolled {
			u.Updated = now // user show's "updated" tells of it
		}
		u.Failures = nil
		if ip := ch.EndUserIP; ip.IsValid() {
			if t.ReconnectWindow > 0 {
				o.proven = ipKey(ip)
			}
			if t.RememberIPFor > 0 && !t.inOffice(ip) && !containsAddr(u.HomeIPs, ip) {
				u.Remembered, dirty = remember(u.Remembered, ipKey(ip), now, t.RememberIPFor, t.MaxRememberedIPs), true
			}
		}
		o.res = res
		if dirty {
			o.user = &u
		}
		return o, nil
	}
	// A wrong answer, or a TOTP code too far out to be accepted alone,
	// counts as an attempt; after the latter only the next code will do.
	ch.Attempts++
	ch.NextStep, ch.NextDrift = 0, 0
	if reason == "totp_far" {
		ch.NextStep, ch.NextDrift = step+1, int(step-otp.Step(now))
		o.far = step // refused at every node from now on (see verify)
	}
	// Without a first factor (the sign-in page's code-only question), wrong
	// answers count against that page only (see signInTry).
	if lock := t.Lockout; lock.Failures > 0 && !ch.NoFirstFactor {
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
			o.res, o.user = res, &u
			return o, nil
		}
		o.user = &u
	}
	left := t.MaxAttempts - ch.Attempts
	if left <= 0 {
		res.Decision, res.Reason, res.Message = Reject, reason+"_final", m.TooManyWrong
		o.res = res
		return o, nil
	}
	// A new State for the next round: each State answers once.
	id, err := e.newState()
	if err != nil {
		return o, err
	}
	ch.ID = id
	res.Decision, res.Reason, res.State = Challenge, reason, id
	res.Message = fill(m.WrongCode, "{tries}", strconv.Itoa(left))
	if ch.NextStep != 0 {
		res.Message = prompt(m, ch)
	}
	o.res, o.again = res, &ch
	return o, nil
}

// verify checks code for the challenge, or as one of u's recovery codes,
// and changes u as a success requires (the TOTP step used, the drift
// learned, a linked TOTP made active, a recovery code spent). It returns
// the TOTP step a code matched, and the reason "totp_resync" for the
// second of two codes in a row that learn the phone's drift anew. A TOTP
// code found too far out to be accepted alone is not ok, with the reason
// "totp_far" and its step (see matchTOTP); the caller records that step,
// and far reports the steps so recorded, which are never accepted: the
// answer told whoever typed the code that it is one, so accepting it when
// its step comes near would try each guess against the steps ahead as
// well as the three near. A phone ahead has moved on past that step by
// then. They are kept apart from the replay guard's last step, so that a
// stray code from ahead does not make the user's current codes replays.
func (e *Engine) verify(u *store.User, far func(step int64) bool, ch live.Challenge, code string, now time.Time) (ok bool, reason string, step int64, err error) {
	if i := e.matchRecovery(*u, code); i >= 0 {
		u.Recovery = slices.Delete(slices.Clone(u.Recovery), i, i+1)
		return true, "recovery_code", 0, nil
	}
	switch ch.Method {
	case MethodTOTP:
		tot := u.TOTP
		if ch.Enrol == enrolLink {
			tot = u.PendingTOTP
		}
		if tot == nil {
			return false, "no_totp", 0, nil
		}
		step, reason, err := matchTOTP(e.key, u.Name, tot, code, now, ch)
		if err != nil || reason != "" {
			return false, reason, step, err
		}
		if far(step) {
			return false, "totp_replay", 0, nil
		}
		drift, reason := tot.Drift, "totp_ok"
		if ch.NextStep != 0 {
			drift, reason = ch.NextDrift, "totp_resync"
		}
		if ch.Enrol == enrolLink {
			activate(u, step, drift)
			return true, "totp_linked", step, nil
		}
		t := *tot
		t.LastStep, t.Drift = step, drift
		u.TOTP = &t
		return true, reason, step, nil
	default:
		if ch.CodeHash != nil && e.key.Equal(ch.CodeHash, codeContext(ch.Salt), code) {
			return true, "code_ok", 0, nil
		}
		return false, "wrong_code", 0, nil
	}
}

// stepGone is when no window of codes reaches step any more, whatever
// drift is learned meanwhile: neither the one around the drift (at most
// MaxDrift off), nor the one around the server's clock where a code far
// out is found, nor the next code after it (see matchTOTP), with a step
// to spare.
func stepGone(step int64) time.Time {
	last := step + otp.Skew + otp.MaxDrift + 2
	return time.Unix(last*int64(otp.Period/time.Second), 0)
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
