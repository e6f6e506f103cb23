package policy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/sms"
	"github.com/otpgate/otpgate/store"
)

// answer decides a reply to a challenge (PRODUCT.md step 4). The whole
// answer is one transaction: the challenge is used up, the TOTP step
// recorded and the (user, IP) pair proven together, or not at all.
func (e *Engine) answer(ctx context.Context, req Request) (Result, error) {
	name := store.NormalizeName(req.User)
	var res Result
	err := e.db.Update(func(tx *store.Tx) error {
		res = Result{User: name}
		ch, err := tx.Challenge(req.State)
		if isNotFound(err) {
			res = reject("unknown_state", e.messages(req.Tenant).CodeExpired)
			return nil
		}
		if err != nil {
			return err
		}
		if ch.User != name || ch.Client != req.Client {
			// Not this user's or this gateway's challenge: leave it for its owner.
			res = reject("state_mismatch", e.messages(req.Tenant).CodeExpired)
			return nil
		}
		if err := tx.DeleteChallenge(ch.ID); err != nil {
			return err
		}
		u, err := tx.User(name)
		if isNotFound(err) {
			res = reject("unknown_user", e.messages(req.Tenant).BadPassword)
			return nil
		}
		if err != nil {
			return err
		}
		t := e.tenants[tenantName(u, req)]
		if t == nil {
			res = reject("unknown_tenant", DefaultMessages().Unavailable)
			return nil
		}
		res, err = e.check(tx, req, t, u, ch)
		return err
	})
	res.User = name
	if err != nil {
		return res, fmt.Errorf("answer challenge: %w", err)
	}
	return res, nil
}

// check compares the code with the challenge and writes what follows from
// it within tx.
func (e *Engine) check(tx *store.Tx, req Request, t *Tenant, u store.User, ch store.Challenge) (Result, error) {
	now := e.now()
	m := t.Messages
	res := Result{Tenant: t.Name, Method: ch.Method}
	if now.After(ch.Expires) {
		res.Decision, res.Reason, res.Message = Reject, "code_expired", m.CodeExpired
		return res, nil
	}
	ok, reason, err := e.verify(tx, &u, ch, req.Password, now)
	if err != nil {
		return res, err
	}
	if ok {
		if ch.EndUserIP.IsValid() && t.ReconnectWindow > 0 {
			if err := tx.PutProven(u.Name, ipKey(ch.EndUserIP), now); err != nil {
				return res, err
			}
		}
		res.Decision, res.Reason = Accept, reason
		return res, nil
	}
	ch.Attempts++
	left := t.MaxAttempts - ch.Attempts
	if left <= 0 {
		res.Decision, res.Reason, res.Message = Reject, reason+"_final", m.TooManyWrong
		return res, nil
	}
	// A new State for the next round: each State answers once.
	id, err := e.newState()
	if err != nil {
		return res, err
	}
	ch.ID = id
	if err := tx.PutChallenge(ch); err != nil {
		return res, err
	}
	res.Decision, res.Reason, res.State = Challenge, reason, id
	res.Message = fill(m.WrongCode, "{tries}", strconv.Itoa(left))
	return res, nil
}

// verify checks code for the challenge. For TOTP it records the step used.
func (e *Engine) verify(tx *store.Tx, u *store.User, ch store.Challenge, code string, now time.Time) (ok bool, reason string, err error) {
	switch ch.Method {
	case MethodTOTP:
		if u.TOTP == nil {
			return false, "no_totp", nil
		}
		secretText, err := e.key.Open(u.TOTP.Sealed, totpContext(u.Name))
		if err != nil {
			return false, "", fmt.Errorf("open totp secret of %s: %w", u.Name, err)
		}
		step, matched := otp.MatchTOTP(string(secretText), code, now)
		if !matched {
			return false, "wrong_code", nil
		}
		if step <= u.TOTP.LastStep {
			return false, "totp_replay", nil
		}
		u.TOTP.LastStep = step
		if err := tx.PutUser(*u); err != nil {
			return false, "", err
		}
		return true, "totp_ok", nil
	default:
		if ch.CodeHash != nil && e.key.Equal(ch.CodeHash, codeContext(ch.Salt), code) {
			return true, "code_ok", nil
		}
		return false, "wrong_code", nil
	}
}

// codeContext keys the hash of a sent code to its challenge's salt.
func codeContext(salt string) string { return "code:" + salt }

// totpContext binds a sealed TOTP secret to its user.
func totpContext(user string) string { return "totp:" + user }

// smsMessage is the message that carries code to a user by method.
func smsMessage(method, to, code string, t *Tenant) sms.Message {
	return sms.Message{Channel: method, To: to, Code: code, Text: fill(t.Messages.CodeText, "{code}", code)}
}
