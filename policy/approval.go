package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/store"
)

// DefaultHold is how long a login from a gateway that cannot prompt is
// held for approval: below the 60 seconds NPS waits at most.
const DefaultHold = 50 * time.Second

// ErrApprovalGone is returned for a link that was used, ran out of time or
// never existed.
var ErrApprovalGone = live.ErrGone

// Approval is a held login waiting for its user to approve or deny it on
// otpgate's web page.
type Approval = live.Approval

// Approval returns the held login a link token belongs to, if it can
// still be decided. The link may have been sent by another node.
func (e *Engine) Approval(token string) (Approval, bool) {
	a, ok, err := e.approvals.Lookup(token, e.now())
	if err != nil {
		e.log.Error("look up approval", "err", err)
	}
	return a, ok
}

// Resolve approves or denies the held login of a link, wherever it is
// held. A link decides once; afterwards it is ErrApprovalGone.
func (e *Engine) Resolve(token string, approve bool) error {
	o := live.Outcome{Result: live.Denied}
	if approve {
		o.Result = live.Approved
	}
	return e.approvals.Decide(token, o, e.now())
}

// hold asks u to approve a login from a gateway that cannot prompt: a
// one-time link goes to their SMS or e-mail, and the login is held until
// they answer. A repeated login while one is held shares its link. The
// Result it returns is held (its Wait waits for the answer), unless the
// login is rejected at once.
func (e *Engine) hold(ctx context.Context, req Request, t *Tenant, u store.User, methods []string) Result {
	m := t.Messages
	if e.publicURL == "" {
		e.log.ErrorContext(ctx, "a gateway cannot prompt and no web.public_url is set for approval links", "client", req.Client)
		return reject("no_web", m.Unavailable)
	}
	method := ""
	for _, mm := range methods {
		if mm == MethodSMS || mm == MethodEmail {
			method = mm
			break
		}
	}
	if method == "" {
		return reject("no_link_method", fill(m.SignInFirst, "{url}", e.publicURL+"/signin"))
	}
	release, full := e.held.take(u.Name, req.Client)
	if full != "" {
		e.log.WarnContext(ctx, "too many held logins; rejected at once ("+full+")", "user", u.Name, "client", req.Client)
		return Result{Decision: Reject, Reason: "hold_limit", Method: method, Message: m.Unavailable}
	}
	p, fresh, err := e.holdLogin(req, t, u)
	if err != nil {
		release()
		e.log.ErrorContext(ctx, "approval failed", "user", u.Name, "err", err)
		return reject("error", m.Unavailable)
	}
	res := Result{Method: method}
	if fresh {
		var sent bool
		if res, sent = e.sendLink(ctx, req, t, u, p, method); !sent {
			release()
			if err := e.approvals.Decide(p.Token, live.Outcome{Result: res.Reason, Message: res.Message}, e.now()); err != nil && !errors.Is(err, live.ErrGone) {
				e.log.ErrorContext(ctx, "end unsent approval", "user", u.Name, "err", err)
			}
			return res
		}
	}
	res.Wait = func() Result {
		defer release()
		return e.await(ctx, req, t, u, p, res)
	}
	return res
}

// sendLink sends the link of a new approval to u by method and returns
// the provider that took it, or, when it could not, the Reject that says
// why.
func (e *Engine) sendLink(ctx context.Context, req Request, t *Tenant, u store.User, p Approval, method string) (Result, bool) {
	m := t.Messages
	done, ok := e.io.try()
	if !ok {
		return e.busy(req, t, method), false
	}
	defer done()
	to := u.Phone
	if method == MethodEmail {
		to = u.Email
	}
	refused, err := e.reserve(t, u.Name, method, to, e.now())
	switch {
	case err != nil:
		return Result{Decision: Reject, Reason: "error", Method: method, Message: m.Unavailable}, false
	case refused != "":
		return Result{Decision: Reject, Reason: refused, Method: method, Message: refusalMessage(m, refused)}, false
	}
	msg := message(t, method, to, "")
	msg.Text = fill(m.ApprovalText, "{gateway}", e.DisplayName(req.Client), "{link}", e.publicURL+"/a/"+p.Token)
	provider, err := e.rules().senders[method].Send(ctx, msg)
	if err != nil {
		e.log.WarnContext(ctx, "delivery failed", "user", u.Name, "method", method, "err", err)
		return Result{Decision: Reject, Reason: "delivery_failed", Method: method, Message: m.DeliveryFailed}, false
	}
	return Result{Method: method, Provider: provider}, true
}

// await waits for the answer to a held login: the link used (on any
// node's page), the hold run out, or the server stopping.
func (e *Engine) await(ctx context.Context, req Request, t *Tenant, u store.User, p Approval, res Result) Result {
	m := t.Messages
	res.User, res.Tenant = u.Name, t.Name
	decided, stop := e.approvals.Wait(p.ID)
	defer stop()
	var o live.Outcome
	select {
	case o = <-decided:
	case <-e.after(p.Expires.Sub(e.now())):
		// Ended here, so that the link decides nothing any more; a click
		// that came first wins.
		if err := e.approvals.Forget(p.ID); err != nil {
			e.log.ErrorContext(ctx, "end approval", "user", u.Name, "err", err)
		}
		select {
		case o = <-decided:
		default:
			o.Result = live.TimedOut
		}
	case <-ctx.Done():
		o.Result = live.TimedOut
	case <-e.stopHolds:
		o.Result = live.TimedOut
	}
	switch o.Result {
	case live.Approved:
		if err := e.approved(req, t, u); err != nil {
			e.log.ErrorContext(ctx, "record approval", "user", u.Name, "err", err)
		}
		res.Decision, res.Reason = Accept, "approved"
	case live.Denied:
		res.Decision, res.Reason, res.Message = Reject, "denied", m.Denied
	case live.TimedOut:
		res.Decision, res.Reason, res.Message = Reject, "approval_timeout", m.ApprovalTimeout
	default: // the link could not be sent
		res.Decision, res.Reason, res.Message = Reject, o.Result, o.Message
	}
	return res
}

// StopHolds ends every held login with a Reject, as on shutdown: a held
// request must not keep the server from stopping.
func (e *Engine) StopHolds() {
	e.stopOnce.Do(func() { close(e.stopHolds) })
}

// holdLogin returns the approval waiting for this user, gateway and place
// (on any node), or registers a new one (fresh) whose link is to be sent.
func (e *Engine) holdLogin(req Request, t *Tenant, u store.User) (Approval, bool, error) {
	token, err := e.newState()
	if err != nil {
		return Approval{}, false, err
	}
	hold := req.Hold
	if hold <= 0 {
		hold = e.holdFor
	}
	now := e.now()
	a := Approval{
		Token: token, User: u.Name, Tenant: t.Name, Lang: t.Language, Client: req.Client,
		IP: ipKey(req.IP), Machine: req.Machine, Created: now, Expires: now.Add(hold),
	}
	return e.approvals.Hold(u.Name+"\x00"+req.Client+"\x00"+place(req), a, now)
}

// approved records an approved login like a proved code: the reconnect
// window for its IP, and a remembered IP. The computer name is not
// recorded: the client chooses it, so it is no place to trust.
func (e *Engine) approved(req Request, t *Tenant, u store.User) error {
	now := e.now()
	return e.db.Update(func(tx *store.Tx) error {
		if t.ReconnectWindow > 0 && req.IP.IsValid() {
			if err := tx.PutProven(u.Name, ipKey(req.IP), now); err != nil {
				return err
			}
		}
		if t.RememberIPFor > 0 && req.IP.IsValid() && !t.inOffice(req.IP) {
			cur, err := tx.User(u.Name)
			if err != nil {
				return err
			}
			cur.Remembered = remember(cur.Remembered, ipKey(req.IP), now, t.RememberIPFor, t.MaxRememberedIPs)
			return tx.PutUser(cur)
		}
		return nil
	})
}

// preapprove lets user's logins through gateways that cannot prompt for
// the tenant's pre-approval window.
func (e *Engine) preapprove(user string, t *Tenant) error {
	until := e.now().Add(t.PreapprovalWindow)
	if err := e.db.Update(func(tx *store.Tx) error { return tx.PutPreapproved(user, until) }); err != nil {
		return fmt.Errorf("record pre-approval: %w", err)
	}
	return nil
}

// place is where a login comes from, for telling held logins apart (not
// for trusting them): its IP, else the computer name it gave.
func place(req Request) string {
	if req.IP.IsValid() {
		return ipKey(req.IP).String()
	}
	return "machine:" + req.Machine
}
