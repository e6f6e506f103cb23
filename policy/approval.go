package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/otpgate/otpgate/store"
)

// DefaultHold is how long a login from a gateway that cannot prompt is
// held for approval: below the 60 seconds NPS waits at most.
const DefaultHold = 50 * time.Second

// ErrApprovalGone is returned for a link that was used, ran out of time or
// never existed.
var ErrApprovalGone = errors.New("this approval link has been used or has expired")

// Approval is a held login waiting for its user to approve or deny it on
// otpgate's web page.
type Approval struct {
	// Token is the link's secret: 128 random bits in hex.
	Token string
	User  string
	// Tenant and Lang are the user's tenant and its language.
	Tenant, Lang string
	// Client is the gateway the login came through.
	Client string
	// IP and Machine are where the login came from, when the gateway said.
	IP      netip.Addr
	Machine string
	// Created and Expires bound the hold.
	Created, Expires time.Time
}

// pending is an Approval and how it ended.
type pending struct {
	Approval
	key      string        // user, gateway and place: one link per login
	done     chan struct{} // closed when decided
	approved bool
	unsent   *Result // why the link could not be sent, for the logins sharing it
}

// approvals are the held logins, in memory: a held request does not
// outlive the process either.
type approvals struct {
	mu      sync.Mutex
	byToken map[string]*pending
	byKey   map[string]*pending
}

// Approval returns the held login a link token belongs to, if it can
// still be decided.
func (e *Engine) Approval(token string) (Approval, bool) {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.byToken[token]
	if !ok || !e.now().Before(p.Expires) {
		return Approval{}, false
	}
	return p.Approval, true
}

// Resolve approves or denies the held login of a link. A link decides
// once; afterwards it is ErrApprovalGone.
func (e *Engine) Resolve(token string, approve bool) error {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.byToken[token]
	if !ok || !e.now().Before(p.Expires) {
		return ErrApprovalGone
	}
	e.forget(p)
	p.approved = approve
	close(p.done)
	return nil
}

// forget removes p from the table; e.approvals.mu must be held.
func (e *Engine) forget(p *pending) {
	delete(e.approvals.byToken, p.Token)
	if e.approvals.byKey[p.key] == p {
		delete(e.approvals.byKey, p.key)
	}
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
	p, fresh, err := e.pendingFor(req, t, u)
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
			e.unsent(p, res)
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
func (e *Engine) sendLink(ctx context.Context, req Request, t *Tenant, u store.User, p *pending, method string) (Result, bool) {
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

// await waits for the answer to a held login: the link used, the hold run
// out, or the server stopping.
func (e *Engine) await(ctx context.Context, req Request, t *Tenant, u store.User, p *pending, res Result) Result {
	select {
	case <-p.done:
	case <-e.after(p.Expires.Sub(e.now())):
		e.drop(p)
	case <-ctx.Done():
		e.drop(p)
	case <-e.stopHolds:
		e.drop(p)
	}
	e.approvals.mu.Lock()
	approved, unsent := p.approved, p.unsent
	e.approvals.mu.Unlock()
	m := t.Messages
	res.User, res.Tenant = u.Name, t.Name
	switch {
	case unsent != nil:
		res.Decision, res.Reason, res.Message = unsent.Decision, unsent.Reason, unsent.Message
	case approved:
		if err := e.approved(req, t, u); err != nil {
			e.log.ErrorContext(ctx, "record approval", "user", u.Name, "err", err)
		}
		res.Decision, res.Reason = Accept, "approved"
	case isClosed(p.done):
		res.Decision, res.Reason, res.Message = Reject, "denied", m.Denied
	default:
		res.Decision, res.Reason, res.Message = Reject, "approval_timeout", m.ApprovalTimeout
	}
	return res
}

// StopHolds ends every held login with a Reject, as on shutdown: a held
// request must not keep the server from stopping.
func (e *Engine) StopHolds() {
	e.stopOnce.Do(func() { close(e.stopHolds) })
}

// pendingFor returns the approval waiting for this user, gateway and
// place, or registers a new one (fresh).
func (e *Engine) pendingFor(req Request, t *Tenant, u store.User) (*pending, bool, error) {
	key := u.Name + "\x00" + req.Client + "\x00" + place(req)
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	if p, ok := e.approvals.byKey[key]; ok && e.now().Before(p.Expires) {
		return p, false, nil
	}
	token, err := e.newState()
	if err != nil {
		return nil, false, err
	}
	hold := req.Hold
	if hold <= 0 {
		hold = e.holdFor
	}
	now := e.now()
	p := &pending{
		Approval: Approval{
			Token: token, User: u.Name, Tenant: t.Name, Lang: t.Language, Client: req.Client,
			IP: ipKey(req.IP), Machine: req.Machine, Created: now, Expires: now.Add(hold),
		},
		key: key, done: make(chan struct{}),
	}
	e.approvals.byToken[token] = p
	e.approvals.byKey[key] = p
	return p, true, nil
}

// unsent ends an approval whose link could not be sent: the logins that
// share it are rejected as the one that tried to send it was.
func (e *Engine) unsent(p *pending, why Result) {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	e.forget(p)
	p.unsent = &why
	close(p.done)
}

// drop ends an approval that can no longer be decided.
func (e *Engine) drop(p *pending) {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	e.forget(p)
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

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
