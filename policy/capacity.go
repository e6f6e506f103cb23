package policy

import (
	"sync"

	"github.com/otpgate/otpgate/store"
)

// HoldLimits cap the logins held for approval at once, so that a flood of
// them is rejected instead of growing without bound. A held login takes
// no request worker, but it is memory and a link that may be approved.
type HoldLimits struct {
	// PerUser caps one user's held logins; zero means 10.
	PerUser int
	// PerClient caps the held logins through one gateway; zero means 500.
	PerClient int
	// Total caps all held logins; zero means 1000.
	Total int
}

// holds counts the logins held at once against their caps.
type holds struct {
	limits HoldLimits

	mu       sync.Mutex
	byUser   map[string]int
	byClient map[string]int
	total    int
}

func newHolds(l HoldLimits) holds {
	if l.PerUser <= 0 {
		l.PerUser = 10
	}
	if l.PerClient <= 0 {
		l.PerClient = 500
	}
	if l.Total <= 0 {
		l.Total = 1000
	}
	return holds{limits: l, byUser: map[string]int{}, byClient: map[string]int{}}
}

// take counts one more held login of user through client and returns the
// function that uncounts it. When a cap is reached it counts nothing and
// returns the configuration key of that cap instead.
func (h *holds) take(user, client string) (release func(), full string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.total >= h.limits.Total:
		return nil, "radius.max_held"
	case h.byClient[client] >= h.limits.PerClient:
		return nil, "radius.max_held_per_client"
	case h.byUser[user] >= h.limits.PerUser:
		return nil, "radius.max_held_per_user"
	}
	h.total++
	h.byClient[client]++
	h.byUser[user]++
	var once sync.Once
	return func() { once.Do(func() { h.release(user, client) }) }, ""
}

func (h *holds) release(user, client string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total--
	if h.byClient[client]--; h.byClient[client] == 0 {
		delete(h.byClient, client)
	}
	if h.byUser[user]--; h.byUser[user] == 0 {
		delete(h.byUser, user)
	}
}

// Held returns how many logins are held for approval.
func (e *Engine) Held() int {
	e.held.mu.Lock()
	defer e.held.mu.Unlock()
	return e.held.total
}

// ioSlots bound the decisions that wait on something outside otpgate at
// once: a delivery provider, a directory, an upstream RADIUS server, or
// another decision of the same user that is sending (lockUser). A slot is
// taken without waiting, and a decision that finds none is rejected at
// once as "busy": the request workers they would otherwise hold stay free
// for requests that need no I/O, such as a login from an office network.
// A nil ioSlots has no bound.
type ioSlots chan struct{}

func newIOSlots(n int) ioSlots {
	if n <= 0 {
		return nil
	}
	return make(ioSlots, n)
}

// try takes a slot if one is free and returns the function that gives it
// back.
func (s ioSlots) try() (done func(), ok bool) {
	if s == nil {
		return func() {}, true
	}
	select {
	case s <- struct{}{}:
		return func() { <-s }, true
	default:
		return nil, false
	}
}

// busy is the answer when no I/O slot is free.
func (e *Engine) busy(req Request, t *Tenant, method string) Result {
	e.log.Warn("too many requests waiting on providers or directories; rejected at once (radius.max_concurrent_io)",
		"user", store.NormalizeName(req.User), "client", req.Client)
	return Result{Decision: Reject, Reason: "busy", Method: method, Message: t.Messages.Unavailable}
}
