package live

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Approval is a held login waiting for its user to approve or deny it on
// otpgate's web page, through a link sent to them.
type Approval struct {
	// Token is the link's secret: 128 random bits in hex. It is known to
	// the node that sent the link and to whoever has the link; the record
	// is kept under ID, its hash, so that reading the store does not give
	// the link.
	Token string `json:"-"`
	// ID is TokenID(Token).
	ID   string `json:"-"`
	User string `json:"user"`
	// Tenant and Lang are the user's tenant and its language.
	Tenant string `json:"tenant"`
	Lang   string `json:"lang"`
	// Client is the gateway the login came through.
	Client string `json:"client"`
	// IP and Machine are where the login came from, when the gateway said.
	IP      netip.Addr `json:"ip"`
	Machine string     `json:"machine,omitempty"`
	// Created and Expires bound the hold.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Outcome is how an approval ended.
type Outcome struct {
	// Result is Approved, Denied, TimedOut or, for a link that could not
	// be sent, the reason why (an audit reason).
	Result string `json:"result"`
	// Message is what the logins sharing an unsent link are told.
	Message string `json:"message,omitempty"`
}

// The Results of an Outcome that a link's user or its hold decides.
const (
	Approved = "approved"
	Denied   = "denied"
	TimedOut = "timeout"
)

// ErrGone is returned for a link that was used, ran out of time or never
// existed.
var ErrGone = errors.New("this approval link has been used or has expired")

// TokenID is the ID of the approval a link's token belongs to.
func TokenID(token string) string {
	h := sha256.Sum256([]byte("otpgate approval\x00" + token))
	return hex.EncodeToString(h[:])
}

// Approvals keeps the held logins waiting for a click. Holds keeps them in
// one process's memory, Cluster in etcd, where a click on any node's page
// wakes the login held on another.
type Approvals interface {
	// Hold returns the undecided approval live at now for key (a user,
	// gateway and place: one link per login), or, when there is none,
	// holds a under a.ID = TokenID(a.Token) and reports it fresh.
	Hold(key string, a Approval, now time.Time) (held Approval, fresh bool, err error)
	// Lookup returns the undecided approval a link's token belongs to, if
	// it is live at now.
	Lookup(token string, now time.Time) (Approval, bool, error)
	// Decide ends the approval of a link's token with o, once: afterwards,
	// and for a token expired at now or never held, it is ErrGone.
	Decide(token string, o Outcome, now time.Time) error
	// Forget ends the undecided approval with the given ID as TimedOut:
	// its hold has run out, and its link no longer decides anything.
	Forget(id string) error
	// Wait returns a channel that receives the outcome of the approval
	// with the given ID once it is decided (at once if it is already), and
	// a function that stops waiting.
	Wait(id string) (<-chan Outcome, func())
}

// Holds keeps the approvals of one process. It is safe for concurrent
// use, and its methods never fail.
type Holds struct {
	mu    sync.Mutex
	byID  map[string]*held
	byKey map[string]*held
	sweep time.Time // when decided and expired approvals are next swept out
}

// held is an approval, how it ended, and who waits for it.
type held struct {
	Approval
	key     string
	outcome *Outcome
	waiters map[chan Outcome]struct{}
}

// NewHolds returns an empty set of held logins.
func NewHolds() *Holds {
	return &Holds{byID: map[string]*held{}, byKey: map[string]*held{}}
}

// Hold implements Approvals.
func (h *Holds) Hold(key string, a Approval, now time.Time) (Approval, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.byKey[key]; ok && p.outcome == nil && now.Before(p.Expires) {
		return p.Approval, false, nil
	}
	if now.After(h.sweep) {
		for id, p := range h.byID {
			if !now.Before(p.Expires) && len(p.waiters) == 0 {
				h.remove(id)
			}
		}
		h.sweep = now.Add(time.Minute)
	}
	a.ID = TokenID(a.Token)
	p := &held{Approval: a, key: key, waiters: map[chan Outcome]struct{}{}}
	h.byID[a.ID] = p
	h.byKey[key] = p
	return a, true, nil
}

// Lookup implements Approvals.
func (h *Holds) Lookup(token string, now time.Time) (Approval, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.byID[TokenID(token)]
	if !ok || p.outcome != nil || !now.Before(p.Expires) {
		return Approval{}, false, nil
	}
	a := p.Approval
	a.Token = token
	return a, true, nil
}

// Decide implements Approvals.
func (h *Holds) Decide(token string, o Outcome, now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.byID[TokenID(token)]
	if !ok || p.outcome != nil || !now.Before(p.Expires) {
		return ErrGone
	}
	h.end(p, o)
	return nil
}

// Forget implements Approvals.
func (h *Holds) Forget(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.byID[id]; ok && p.outcome == nil {
		h.end(p, Outcome{Result: TimedOut})
	}
	return nil
}

// end decides p and tells those who wait; h.mu is held.
func (h *Holds) end(p *held, o Outcome) {
	p.outcome = &o
	if h.byKey[p.key] == p {
		delete(h.byKey, p.key)
	}
	for w := range p.waiters {
		w <- o
		delete(p.waiters, w)
	}
}

// remove forgets the approval with the given ID; h.mu is held.
func (h *Holds) remove(id string) {
	p := h.byID[id]
	delete(h.byID, id)
	if h.byKey[p.key] == p {
		delete(h.byKey, p.key)
	}
}

// Wait implements Approvals.
func (h *Holds) Wait(id string) (<-chan Outcome, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := make(chan Outcome, 1)
	p, ok := h.byID[id]
	switch {
	case !ok:
		w <- Outcome{Result: TimedOut}
		return w, func() {}
	case p.outcome != nil:
		w <- *p.outcome
		return w, func() {}
	}
	p.waiters[w] = struct{}{}
	return w, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(p.waiters, w)
	}
}
