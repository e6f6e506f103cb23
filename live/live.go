// Package live keeps what otpgate has asked and is waiting to hear
// answered: the challenges (a code asked for in an Access-Challenge) and
// the approvals (a held login waiting for a click on the web page). A
// single node keeps them in memory (Table, Holds): a challenge lasts
// minutes, is answered once, and one lost to a restart costs its user a
// new login, while keeping it on disk would cost every login a disk sync.
// A cluster keeps them in etcd (Cluster), under leases as long as they
// live, so that any node answers any leg and each State answers once
// cluster-wide; a challenge that sent nothing travels sealed in its State
// instead, and its single use is claimed by the caller in the store
// (sealed.go). What a proved challenge changes (the TOTP step, an
// enrolment, a proven IP) is written to the store by the caller.
package live

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/store"
)

// Challenge is a question otpgate asked in an Access-Challenge. It is
// found by the State the gateway echoes.
type Challenge struct {
	// ID is the State attribute's value.
	ID string
	// User and Client bind the challenge: an answer from another user or
	// another gateway does not match. User is the normalised name.
	User   string
	Client string
	// Method is how the code reaches the user: "totp", "sms", "email" or "voice".
	Method string
	// CodeHash is the keyed hash of a sent code; empty for TOTP.
	CodeHash []byte
	// Salt goes into CodeHash; it stays when a wrong answer gives the
	// challenge a new ID.
	Salt string
	// Destination is the masked place a code was sent to, for prompts.
	Destination string
	// EndUserIP is where the login came from; invalid when unknown.
	EndUserIP netip.Addr
	// Attempts counts wrong answers so far.
	Attempts int
	// Sent is when the current code was sent; zero for TOTP.
	Sent time.Time
	// Enrol is what proving this challenge enrols: "" nothing, "link" the
	// user's pending TOTP, "phone" the number in To, "ask_phone" nothing
	// yet (the answer is a phone number, not a code).
	Enrol string
	// To is the phone number being enrolled, for Enrol "phone".
	To string
	// NextStep, when not zero, is the only TOTP step whose code answers
	// the challenge: the one after a code found further from the drift
	// learned than a step, at NextDrift steps from the server's clock
	// give or take one. Two such codes in a row learn NextDrift.
	NextStep  int64
	NextDrift int
	// NoFirstFactor marks a challenge asked on the sign-in page before any
	// first factor was proved: only an authenticator app's code or a
	// recovery code answers it, and wrong answers count against the page
	// only.
	NoFirstFactor bool
	// Expires is when the challenge stops being answerable.
	Expires time.Time
	// Reply and Groups are what the first factor of the login said (an
	// upstream server's attributes, the user's directory groups), for the
	// Accept that proving the challenge gives.
	Reply  []dictionary.Attribute
	Groups []string
	// Claim, when set, is the challenge's single use, which Take left to
	// the caller: a sealed State's (see sealed.go). Whoever takes it
	// claims it (store.Tx.Claim) in the transaction that writes what
	// answering it changes, so that of two answers at once one is
	// written, and every other answer finds it claimed.
	Claim store.Claim `json:"-"`
}

// ErrNotFound: no challenge has that State (never asked, answered already,
// or pruned).
var ErrNotFound = errors.New("no such challenge")

// ErrTaken: the challenge was taken a moment ago by another answer, in a
// cluster: the copy of the same answer that a gateway sent to another
// node at the same moment, whose answer goes out (policy answers this
// one with nothing).
var ErrTaken = errors.New("challenge taken by another answer a moment ago")

// ErrMismatch: the State belongs to another user or another gateway.
var ErrMismatch = errors.New("challenge belongs to another user or gateway")

// Challenges keeps the challenges waiting for an answer. Table keeps them
// in one process's memory, Cluster in etcd for every node. Errors other
// than ErrNotFound, ErrTaken and ErrMismatch are infrastructure (etcd out of reach):
// the caller fails closed.
type Challenges interface {
	// Put keeps c and sets c.ID to the State the gateway is to echo: the
	// ID it has, under which it replaces a challenge with the same ID and
	// becomes the live challenge of its user at its client and end-user
	// IP; or, in a cluster, for a challenge that sent nothing, the
	// challenge itself, sealed, which Live does not find.
	Put(c *Challenge) error
	// Get returns the challenge with the given ID without taking it; false
	// when there is none or it cannot be read now.
	Get(id string) (Challenge, bool)
	// Take removes and returns the challenge with the given ID if it is
	// user's at client: of any number of takers at once, one gets it;
	// or, for a sealed State, returns it with its Claim, which each
	// taker must claim. A challenge of someone else is left for its
	// owner (ErrMismatch).
	Take(id, user, client string) (Challenge, error)
	// Live returns the newest challenge of user at client for the
	// end-user IP ip (invalid when unknown), whether or not it has expired.
	Live(user, client string, ip netip.Addr) (Challenge, bool, error)
	// TakeLive removes and returns the newest challenge of user at client
	// for ip if it is still answerable at now.
	TakeLive(user, client string, ip netip.Addr, now time.Time) (Challenge, bool, error)
	// Sending keeps every other node from starting a challenge for user
	// until release is called, waiting while another holds it, for at
	// most as long as ctx lasts: so that a login that reaches two nodes at
	// once sends one code, and the node that waited finds it (Live). On
	// one node it holds nothing: the engine serializes a user's
	// challenges itself.
	Sending(ctx context.Context, user string) (release func(), err error)
	// Len returns how many challenges are held, answerable or not yet
	// pruned; -1 when that cannot be known now.
	Len() int
	// Prune removes the challenges that expired before now, where that
	// is not done by itself, and returns how many it removed.
	Prune(now time.Time) int
}

// Table holds the challenges of one process. It is safe for concurrent
// use, and its methods never fail.
type Table struct {
	mu     sync.Mutex
	byID   map[string]Challenge
	logins map[login]string // ID of the newest challenge of each login
}

// login is a user at a gateway from an end-user IP: a login repeated
// there finds the challenge it was asked.
type login struct {
	user, client string
	ip           netip.Addr
}

func loginOf(c Challenge) login { return keyOf(c.User, c.Client, c.EndUserIP) }

func keyOf(user, client string, ip netip.Addr) login {
	return login{user: user, client: client, ip: ip.Unmap()}
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{byID: map[string]Challenge{}, logins: map[login]string{}}
}

// Put adds c under its ID, replacing one with the same ID, which it
// leaves as it is. It becomes the live challenge of its user at its
// client and end-user IP.
func (t *Table) Put(cp *Challenge) error {
	c := *cp
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[c.ID] = c
	t.logins[loginOf(c)] = c.ID
	return nil
}

// Get returns the challenge with the given ID, for tests.
func (t *Table) Get(id string) (Challenge, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	return c, ok
}

// Take removes and returns the challenge with the given ID if it is user's
// at client: each State is answered once. A challenge of someone else is
// left for its owner (ErrMismatch).
func (t *Table) Take(id, user, client string) (Challenge, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	switch {
	case !ok:
		return Challenge{}, ErrNotFound
	case c.User != user || c.Client != client:
		return Challenge{}, ErrMismatch
	}
	t.remove(c)
	return c, nil
}

// Live returns the newest challenge of user at client for the end-user IP
// ip (invalid when unknown), whether or not it has expired.
func (t *Table) Live(user, client string, ip netip.Addr) (Challenge, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.logins[keyOf(user, client, ip)]
	if !ok {
		return Challenge{}, false, nil
	}
	c, ok := t.byID[id]
	return c, ok, nil
}

// TakeLive removes and returns the newest challenge of user at client for
// ip if it is still answerable at now.
func (t *Table) TakeLive(user, client string, ip netip.Addr, now time.Time) (Challenge, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[t.logins[keyOf(user, client, ip)]]
	if !ok || !now.Before(c.Expires) {
		return Challenge{}, false, nil
	}
	t.remove(c)
	return c, true, nil
}

// Delete removes the challenge with the given ID, if there is one.
func (t *Table) Delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok {
		t.remove(c)
	}
}

// remove deletes c and, if it is its login's newest, that login's entry.
// t.mu is held.
func (t *Table) remove(c Challenge) {
	delete(t.byID, c.ID)
	k := loginOf(c)
	if t.logins[k] == c.ID {
		delete(t.logins, k)
	}
}

// Sending implements Challenges: nothing to hold on one node.
func (t *Table) Sending(context.Context, string) (func(), error) { return func() {}, nil }

// Len returns how many challenges are held, answerable or not yet pruned.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// Prune removes the challenges that expired before now and returns how
// many it removed.
func (t *Table) Prune(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.byID {
		if c.Expires.Before(now) {
			t.remove(c)
			n++
		}
	}
	return n
}
