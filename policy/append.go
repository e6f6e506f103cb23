package policy

import (
	"context"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// CodeAppend is the Request.CodeInPassword of gateways that cannot show a
// challenge but send a password: the user types the password and then the
// code (or a method's name to be sent one).
const CodeAppend = "append"

// splitCode takes the code, or a method word, off the end of the
// password. With a separator the last one splits; without, a word is
// recognised by name and a code by its length: a sent code's when one is
// live for this login, else a TOTP code's. bad reports a value with no
// well-formed code or word at its end.
func (e *Engine) splitCode(req Request, t *Tenant, u store.User) (Request, bool) {
	pw := req.Password
	if req.CodeSeparator != "" {
		i := strings.LastIndex(pw, req.CodeSeparator)
		if i < 0 {
			return req, true
		}
		req.Password, req.Code = pw[:i], strings.TrimSpace(pw[i+len(req.CodeSeparator):])
		if IsMethod(strings.ToLower(req.Code)) || strings.EqualFold(req.Code, "resend") {
			req.Code = strings.ToLower(req.Code)
			return req, false
		}
		return req, !allDigits(req.Code) || len(req.Code) < 4
	}
	lower := strings.ToLower(pw)
	for _, w := range append([]string{"resend"}, AllMethods...) {
		if strings.HasSuffix(lower, w) && len(pw) > len(w) {
			req.Password, req.Code = pw[:len(pw)-len(w)], w
			return req, false
		}
	}
	n := otp.Digits
	if ch, ok := e.liveChallenge(req, u); ok && ch.Method != MethodTOTP {
		n = t.CodeDigits
	}
	if len(pw) <= n || !allDigits(pw[len(pw)-n:]) {
		return req, true
	}
	req.Password, req.Code = pw[:len(pw)-n], pw[len(pw)-n:]
	return req, false
}

// appended decides the second factor of a login whose code came in the
// password: a method's name sends a code and rejects (the user logs in
// again with it), a code is checked as an answer to the live challenge, or
// as a TOTP code.
func (e *Engine) appended(ctx context.Context, req Request, t *Tenant, u store.User, methods []string) Result {
	m := t.Messages
	word := req.Code
	if word == "resend" {
		word = ""
		for _, mm := range methods {
			if mm != MethodTOTP {
				word = mm
				break
			}
		}
	}
	if IsMethod(word) {
		if word == MethodTOTP || !slices.Contains(methods, word) {
			return reject("method_unavailable", fill(m.MethodUnavailable, "{method}", m.methodName(word)))
		}
		res, err := e.challenge(ctx, req, t, u, []string{word})
		if err != nil {
			e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "method", word, "err", err)
			return Result{Decision: Reject, Reason: "error", Method: word, Message: m.Unavailable}
		}
		if res.Decision == Challenge {
			// The gateway cannot ask: the code waits for the next login.
			res.Decision, res.State, res.Reason = Reject, "", "code_sent"
			res.Message = fill(m.CodeSentAppend, "{destination}", destinationOf(u, word))
		}
		return res
	}
	if req.Code == "" {
		return reject("code_missing", e.codeInPassword(t, u))
	}
	ch, ok, err := e.challenges.TakeLive(u.Name, req.Client, ipKey(req.IP), e.now())
	if err != nil {
		e.log.ErrorContext(ctx, "take live challenge", "user", u.Name, "err", err)
		return Result{Decision: Reject, Reason: "error", Message: m.Unavailable}
	}
	if !ok {
		if !slices.Contains(methods, MethodTOTP) {
			return reject("no_code_sent", e.codeInPassword(t, u))
		}
		ch = live.Challenge{User: u.Name, Client: req.Client, Method: MethodTOTP,
			EndUserIP: ipKey(req.IP), Expires: e.now().Add(t.CodeTTL)}
		if u.TOTP == nil && u.PendingTOTP != nil {
			ch.Enrol = enrolLink
		}
	}
	answer := req
	answer.Password = req.Code
	r, err := e.db.ReadUser(u.Name)
	var res Result
	if err == nil {
		res, err = e.prove(answer, t, ch, r)
	}
	if err != nil {
		e.log.ErrorContext(ctx, "check appended code", "user", u.Name, "err", err)
		return Result{Decision: Reject, Reason: "error", Message: m.Unavailable}
	}
	if res.Decision == Challenge {
		// No second round here: a wrong code is a Reject, and the
		// challenge, with its attempt counted, waits for the next login.
		res.Decision, res.State = Reject, ""
	}
	return res
}

// liveChallenge finds the live challenge of this login, if any.
func (e *Engine) liveChallenge(req Request, u store.User) (live.Challenge, bool) {
	ch, ok, err := e.challenges.Live(store.NormalizeName(req.User), req.Client, ipKey(req.IP))
	return ch, ok && err == nil && e.now().Before(ch.Expires)
}

// destinationOf is the masked destination of a code just sent by method.
func destinationOf(u store.User, method string) string {
	if method == MethodEmail {
		return MaskEmail(u.Email)
	}
	return mask(method, u.Phone)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// codeInPassword is the text that tells u how to type a code after the
// password: one that offers "sms" only to a user who can be sent a code.
func (e *Engine) codeInPassword(t *Tenant, u store.User) string {
	for _, m := range e.methods(t, u) {
		if m != MethodTOTP {
			return t.Messages.CodeInPassword
		}
	}
	if u.TOTP != nil || u.PendingTOTP != nil {
		return t.Messages.CodeInPasswordApp
	}
	return t.Messages.CodeInPassword
}
