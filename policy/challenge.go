package policy

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// challenge asks u for a code (PRODUCT.md step 3f). When the first method
// sends a code, a live challenge of u at this gateway and IP is reused, so
// a login repeated while the code is on its way sends nothing twice; an
// authenticator app's code costs nothing to ask for again (and in a
// cluster, such a challenge is sealed in its State, with no record a
// repeated login could find). Otherwise methods are tried in order
// until one can be used: a method whose code cannot be sent, or whose
// sending a limit forbids, gives way to the next.
func (e *Engine) challenge(ctx context.Context, req Request, t *Tenant, u store.User, methods []string) (Result, error) {
	unlock, ok := e.lockUser(u.Name)
	if !ok {
		return e.busy(req, t, methods[0]), nil
	}
	defer unlock()

	if methods[0] != MethodTOTP {
		// In a cluster, another node may be starting the same login
		// (a gateway that asks two nodes at once): the second to come
		// waits, and finds the first one's challenge.
		// Only a wait that ran out is busy; etcd out of reach fails
		// closed as any store failure does.
		wctx, cancel := context.WithTimeout(ctx, sendingWait)
		release, err := e.challenges.Sending(wctx, u.Name)
		waited := errors.Is(wctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		switch {
		case err != nil && waited:
			e.log.WarnContext(ctx, "another node has been sending this user a code for too long; rejected", "user", u.Name, "client", req.Client)
			return Result{Decision: Reject, Reason: "busy", Method: methods[0], Message: t.Messages.Unavailable}, nil
		case err != nil:
			return Result{}, err
		}
		defer release()
		if res, ok, err := e.reuse(req, t, u); ok || err != nil {
			return res, err
		}
	}
	m := t.Messages
	var failed string // the first method whose code could not be sent
	var refused Result
	for _, method := range methods {
		ch := live.Challenge{
			User: u.Name, Client: req.Client, Method: method,
			EndUserIP: ipKey(req.IP), Expires: e.now().Add(t.CodeTTL),
			Reply: req.given.Reply, Groups: req.given.Groups,
		}
		if method == MethodTOTP && u.PendingTOTP != nil {
			ch.Enrol = enrolLink
		}
		out, err := e.issue(ctx, t, u, &ch)
		if err != nil {
			return Result{}, err
		}
		switch {
		case out.refused != "":
			if refused.Reason == "" {
				refused = Result{Decision: Reject, Reason: out.refused, Method: method, Message: refusalMessage(m, out.refused)}
			}
			continue
		case out.failed:
			if failed == "" {
				failed = method
			}
			continue
		}
		if err := e.challenges.Put(&ch); err != nil {
			return Result{}, err
		}
		res := Result{Decision: Challenge, Reason: "challenge", Method: method, Provider: out.provider,
			State: ch.ID, Message: prompt(m, ch)}
		switch {
		case refused.Reason != "":
			res.Reason = "challenge_backup"
			res.Message = join(refused.Message, res.Message)
		case failed != "":
			res.Reason = "challenge_backup"
			res.Message = join(fill(m.BackupUsed, "{failed}", m.methodName(failed)), res.Message)
		}
		return res, nil
	}
	if refused.Reason != "" {
		return refused, nil
	}
	return Result{Decision: Reject, Reason: "delivery_failed", Method: methods[0], Message: m.DeliveryFailed}, nil
}

// sendingWait bounds how long a login waits for another node that is
// sending the same user a code (live.Challenges.Sending).
const sendingWait = 15 * time.Second

// reuse finds a challenge of u at this gateway and IP that can still be
// answered.
func (e *Engine) reuse(req Request, t *Tenant, u store.User) (Result, bool, error) {
	ch, ok, err := e.challenges.Live(u.Name, req.Client, ipKey(req.IP))
	if !ok || err != nil {
		return Result{}, false, err
	}
	// A challenge changed by resend or a wrong answer is reused too; one
	// that has run out of time or attempts, or whose method the user no
	// longer has, is not.
	if !e.now().Before(ch.Expires) || ch.Attempts >= t.MaxAttempts || !t.allows(ch.Method) || !e.usable(ch.Method, u) {
		return Result{}, false, nil
	}
	return Result{Decision: Challenge, Reason: "challenge_reused", Method: ch.Method,
		State: ch.ID, Message: prompt(t.Messages, ch)}, true, nil
}

// issued is what became of issuing a challenge.
type issued struct {
	provider string // the provider that took a sent code
	refused  string // the limit that forbade sending, as an audit reason
	failed   bool   // every provider failed
}

// issue gives ch a fresh State and, for a sent method, a fresh code, which
// it sends to u within the tenant's limits. ch is not put in the table.
func (e *Engine) issue(ctx context.Context, t *Tenant, u store.User, ch *live.Challenge) (issued, error) {
	id, err := e.newState()
	if err != nil {
		return issued{}, err
	}
	ch.ID = id
	if ch.Method == MethodTOTP {
		return issued{}, nil
	}
	to := u.Phone
	switch {
	case ch.To != "":
		to = ch.To
	case ch.Method == MethodEmail:
		to = u.Email
	}
	code, err := otp.NewCode(e.rand, t.CodeDigits)
	if err != nil {
		return issued{}, err
	}
	now := e.now()
	ch.Salt = id
	ch.CodeHash = e.key.Hash(codeContext(ch.Salt), code)
	ch.Destination = mask(ch.Method, to)
	ch.Sent = now

	refused, err := e.reserve(t, u.Name, ch.Method, to, now)
	if err != nil {
		return issued{}, err
	}
	if refused != "" {
		e.log.WarnContext(ctx, "code not sent", "user", u.Name, "method", ch.Method, "reason", refused)
		e.delivered(ch.Method, "", refused)
		return issued{refused: refused}, nil
	}
	provider, err := e.rules().senders[ch.Method].Send(ctx, message(t, ch.Method, to, code))
	if err != nil {
		e.log.WarnContext(ctx, "delivery failed", "user", u.Name, "method", ch.Method, "err", err)
		e.delivered(ch.Method, "", "failed")
		return issued{failed: true}, nil
	}
	e.delivered(ch.Method, provider, "sent")
	return issued{provider: provider}, nil
}

// What proving a challenge enrols (live.Challenge.Enrol).
const (
	enrolLink     = "link"      // the user's pending TOTP
	enrolPhone    = "phone"     // the number the code went to
	enrolAskPhone = "ask_phone" // nothing yet: the answer is a number
)

// askPhone asks a user with nothing on file for a mobile number
// (enrolment with ask_phone). Nothing is sent until they give one.
func (e *Engine) askPhone(req Request, t *Tenant, u store.User) (Result, error) {
	id, err := e.newState()
	if err != nil {
		return Result{}, err
	}
	ch := live.Challenge{
		ID: id, User: u.Name, Client: req.Client, Method: MethodSMS, Enrol: enrolAskPhone,
		EndUserIP: ipKey(req.IP), Expires: e.now().Add(t.CodeTTL),
		Reply: req.given.Reply, Groups: req.given.Groups,
	}
	if err := e.challenges.Put(&ch); err != nil {
		return Result{}, err
	}
	return Result{Decision: Challenge, Reason: "ask_phone", Method: MethodSMS, State: ch.ID, Message: t.Messages.AskPhone}, nil
}

// prompt is the Reply-Message that asks for the code of ch.
func prompt(m Messages, ch live.Challenge) string {
	switch {
	case ch.Enrol == enrolAskPhone:
		return m.AskPhone
	case ch.NextStep != 0:
		return m.TOTPNext
	case ch.Enrol == enrolLink:
		return m.TOTPLink
	}
	switch ch.Method {
	case MethodTOTP:
		return m.TOTPPrompt
	case MethodVoice:
		return fill(m.CallPlaced, "{destination}", ch.Destination)
	}
	return fill(m.CodeSent, "{destination}", ch.Destination)
}

// join puts two sentences of a Reply-Message together.
func join(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + " " + b
}

// spell writes a code digit by digit, for a voice to read out.
func spell(code string) string {
	return strings.Join(strings.Split(code, ""), " ")
}
