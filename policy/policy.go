// Package policy decides what to answer to one login: accept it, reject it,
// or challenge it for a one-time code. It owns the order of the checks
// (first factor, user, tenant mode, trusted places, challenge) and does no
// network I/O of its own: codes go out through a Sender, and time and
// randomness are injected so the decision can be tested exactly.
package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/sms"
	"github.com/otpgate/otpgate/store"
)

// Decision is the kind of answer.
type Decision int

// The decisions.
const (
	Reject Decision = iota
	Accept
	Challenge
)

func (d Decision) String() string {
	switch d {
	case Accept:
		return "accept"
	case Challenge:
		return "challenge"
	}
	return "reject"
}

// First-factor modes of a gateway.
const (
	// FirstFactorGateway trusts the gateway to have checked the password.
	FirstFactorGateway = "gateway"
	// FirstFactorLocal checks the password against the user's hash in the store.
	FirstFactorLocal = "local"
)

// Request is one login attempt as the gateway sent it.
type Request struct {
	// Client is the gateway's configured name.
	Client string
	// Tenant is the gateway's tenant, used for users who have none of
	// their own and for unknown users.
	Tenant string
	// FirstFactor is who checks the password: FirstFactorGateway,
	// FirstFactorLocal, FirstFactorLDAP, FirstFactorRADIUS, or, on the
	// sign-in page only, FirstFactorNone.
	FirstFactor string
	// User is the login name, already stripped of any domain or realm the
	// gateway's settings remove.
	User string
	// Password is the User-Password: the password on a new login, the code
	// in an answer to a challenge.
	Password string
	// State is the State attribute; empty on a new login.
	State string
	// IP is the end user's address; the zero Addr when the gateway sent none.
	IP netip.Addr
	// Machine is the end user's computer name when the gateway sends one
	// (RD Gateway's MS-Machine-Name). The client chooses it: it is shown
	// on the approval page and tells held logins apart, but it is never a
	// trusted place (the reconnect window is the IP's).
	Machine string
	// NoChallenge marks a gateway that cannot show a challenge: the login
	// is held for approval out of band instead.
	NoChallenge bool
	// Hold is how long to hold such a login; zero means Config.Hold.
	Hold time.Duration
	// SignIn marks a login on otpgate's own sign-in page, where a code
	// proved pre-approves the user's logins through gateways that cannot
	// prompt. No trusted place skips anything there, nothing is sent
	// before a first factor is proved, and without one wrong codes count
	// only against the page (see signin.go).
	SignIn bool
	// SelfService marks a sign-in (SignIn) to the user's own page: as any
	// sign-in, but it pre-approves nothing.
	SelfService bool
	// CodeInPassword is CodeAppend for gateways whose users type the code
	// after the password; "" means a challenge asks for it.
	CodeInPassword string
	// CodeSeparator, when set, separates the password from the code.
	CodeSeparator string
	// Code is the code split off the password (set by the engine).
	Code string
	// Reply are the gateway's own reply attributes for its Accepts.
	Reply []dictionary.Reply
	// NAS are the gateway's attributes that describe the login, passed on
	// to a password checker that forwards them (upstream RADIUS).
	NAS []dictionary.Attribute

	// given is what the first factor said of the user (set by the
	// engine), which a challenge keeps for its Accept.
	given Identity
	// arrived is where the store was when the request came: what was
	// written since may be the work of a copy of it at another node.
	arrived store.Mark
}

// Result is the answer to a Request.
type Result struct {
	Decision Decision
	// Message is shown to the user (Reply-Message); empty means none.
	Message string
	// State is set on a Challenge.
	State string
	// Reply are, on an Accept, the attributes for the gateway to act on
	// (a group name, a filter, a session's limits), Class among them.
	Reply []dictionary.Attribute
	// Class is, on an Accept, the Class attribute sent (one otpgate made
	// to name the login, unless the reply attributes set one), which the
	// gateway's accounting sends back.
	Class string
	// Timeout is, on a Challenge, how long it can still be answered; zero
	// means not said.
	Timeout time.Duration
	// Echo is, on a Challenge, whether the answer may be shown as it is
	// typed: a phone number may, a code may not.
	Echo bool
	// Reason is a stable word for logs and the audit log.
	Reason string
	// Method is the second factor involved, if any.
	Method string
	// Provider is the delivery provider that took a sent code, if any.
	Provider string
	// User and Tenant are the normalised name and the tenant that decided.
	User   string
	Tenant string
	// Unanswered, on a Reject, means that a gateway gets no answer at all
	// (a page still shows Message): another answer to the same State,
	// at another node at the same moment, was judged, and its decision
	// goes out. A gateway that sends each request to two nodes at once
	// and takes the first answer so gets that one, never this Reject.
	Unanswered bool
	// Wait, when not nil, means the login is held for approval and not
	// decided yet: Wait blocks until it is (approved, denied, timed out or
	// stopped by StopHolds) and returns the decision, recorded like any
	// other. Until then the other fields say nothing. The caller must call
	// Wait once: the hold counts against its caps until it returns.
	Wait func() Result
}

// Sender delivers a code to a user through one channel, and says which
// provider took it.
type Sender interface {
	Send(ctx context.Context, m sms.Message) (provider string, err error)
}

// Engine makes decisions. Its fields are set once by New.
type Engine struct {
	db      *store.DB
	key     *secret.Key
	current atomic.Pointer[rules]
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger

	observer   Observer
	approvals  live.Approvals
	held       holds   // held logins, counted against their caps
	io         ioSlots // decisions waiting on I/O
	challenges live.Challenges
	publicURL  string
	holdFor    time.Duration
	after      func(time.Duration) <-chan time.Time
	stopHolds  chan struct{}
	stopOnce   sync.Once

	// sending serialises the start of challenges per user, so that two
	// logins at once cannot both send a code (see lockUser).
	sendingMu sync.Mutex
	sending   map[string]*userLock

	// displayNames are the gateways' names as users know them (see
	// SetDisplayNames).
	displayNames atomic.Pointer[map[string]string]
}

// userLock is held while a user's challenge is being started.
type userLock struct {
	sync.Mutex
	waiters int // holders and waiters; the entry goes when it drops to 0
}

// Config is what an Engine needs.
type Config struct {
	Store   *store.DB
	Key     *secret.Key
	Tenants []Tenant
	// Senders deliver sent codes, by channel ("sms", "email", "voice"); a
	// channel without one cannot be used.
	Senders map[string]Sender
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of States and codes; nil means crypto/rand.
	Rand io.Reader
	// Log receives one line per decision; nil means discard.
	Log *slog.Logger
	// PublicURL is where otpgate's web page is reached, for approval
	// links ("https://otp.example.com"); empty means no links.
	PublicURL string
	// Hold is how long a login from a gateway that cannot prompt waits
	// for approval when its client sets none; zero means DefaultHold.
	Hold time.Duration
	// After makes the timer of a hold; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Checkers check passwords for the first factors FirstFactorLDAP and
	// FirstFactorRADIUS; a mode without one fails closed.
	Checkers map[string]PasswordChecker
	// Observer is told of every decision and delivery, for metrics; nil
	// means nobody is.
	Observer Observer
	// HoldLimits cap the logins held for approval at once.
	HoldLimits HoldLimits
	// MaxIO bounds the decisions that may wait on something outside
	// otpgate at once (see ioSlots); zero means no bound.
	MaxIO int
	// Challenges and Approvals keep what is waiting for an answer; nil
	// means in this process's memory (live.NewTable, live.NewHolds). A
	// cluster gives every node the same live.Cluster.
	Challenges live.Challenges
	Approvals  live.Approvals
}

// Observer hears what the engine does, for metrics.
type Observer interface {
	// Decided is called once per decision, with how long it took.
	Decided(client string, res Result, took time.Duration)
	// Delivered is called once per message handed to a channel's
	// providers: result is "sent", "failed" or the limit that stopped it.
	Delivered(channel, provider, result string)
}

// New makes an Engine.
func New(c Config) *Engine {
	e := &Engine{db: c.Store, key: c.Key, now: c.Now, rand: c.Rand, log: c.Log,
		sending: map[string]*userLock{}, challenges: c.Challenges, approvals: c.Approvals,
		publicURL: strings.TrimRight(c.PublicURL, "/"), observer: c.Observer, holdFor: c.Hold, after: c.After, stopHolds: make(chan struct{}),
		held: newHolds(c.HoldLimits), io: newIOSlots(c.MaxIO)}
	if e.challenges == nil {
		e.challenges = live.NewTable()
	}
	if e.approvals == nil {
		e.approvals = live.NewHolds()
	}
	if e.holdFor <= 0 {
		e.holdFor = DefaultHold
	}
	if e.after == nil {
		e.after = time.After
	}
	e.Reload(c.Tenants, c.Senders, c.Checkers)
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// Challenges returns how many challenges are waiting for an answer
// (or, expired, for the next prune).
func (e *Engine) Challenges() int { return e.challenges.Len() }

// PruneChallenges forgets the challenges that have expired and returns
// how many.
func (e *Engine) PruneChallenges() int { return e.challenges.Prune(e.now()) }

// Decide answers one request and records the decision in the audit log.
// It fails closed: when the store cannot be read or written the answer is
// a Reject with the tenant's "unavailable" text.
func (e *Engine) Decide(ctx context.Context, req Request) Result {
	start := time.Now()
	req.arrived = e.db.Mark()
	var res Result
	var err error
	if req.State != "" {
		res, err = e.answer(ctx, req)
	} else {
		res, err = e.login(ctx, req)
	}
	if err != nil {
		e.log.ErrorContext(ctx, "decision failed", "user", req.User, "client", req.Client, "err", err)
		res = Result{Decision: Reject, Reason: "error", User: res.User, Tenant: res.Tenant,
			Message: e.messages(res.Tenant, req.Tenant).Unavailable}
	}
	if res.Decision == Challenge {
		res.Timeout, res.Echo = e.asked(res.State)
	}
	if res.Wait != nil { // held: recorded once decided
		return e.decidedLater(ctx, req, res, start)
	}
	return e.decided(ctx, req, res, start)
}

// decidedLater is decided for a held login, once it is decided. It is a
// function of its own because the closure keeps req: in Decide itself req
// would be moved to the heap on every call, held or not.
//
//go:noinline
func (e *Engine) decidedLater(ctx context.Context, req Request, res Result, start time.Time) Result {
	wait := res.Wait
	res.Wait = func() Result { return e.decided(ctx, req, wait(), start) }
	return res
}

// decided completes a decision begun at start: pre-approval, the audit
// log, the observer.
func (e *Engine) decided(ctx context.Context, req Request, res Result, start time.Time) Result {
	if res.User == "" {
		res.User = store.NormalizeName(req.User)
	}
	if req.SignIn {
		res = e.signedIn(ctx, req, res)
	}
	if res.Decision == Accept {
		if err := e.withClass(&res); err != nil {
			e.log.ErrorContext(ctx, "make a Class", "user", res.User, "err", err)
			res = Result{Decision: Reject, Reason: "error", User: res.User, Tenant: res.Tenant, Message: e.messages(res.Tenant, req.Tenant).Unavailable}
		}
	}
	e.record(ctx, req, res)
	if e.observer != nil {
		e.observer.Decided(req.Client, res, time.Since(start))
	}
	return res
}

// asked says how long the challenge with State id can still be answered,
// and whether its answer may be shown as it is typed.
func (e *Engine) asked(id string) (time.Duration, bool) {
	ch, ok := e.challenges.Get(id)
	if !ok {
		return 0, false
	}
	return max(0, ch.Expires.Sub(e.now())), ch.Enrol == enrolAskPhone
}

// delivered tells the observer of a delivery.
func (e *Engine) delivered(channel, provider, result string) {
	if e.observer != nil {
		e.observer.Delivered(channel, provider, result)
	}
}

func (e *Engine) record(ctx context.Context, req Request, res Result) {
	ip := ""
	if req.IP.IsValid() {
		ip = req.IP.Unmap().String()
	}
	attrs := append(make([]slog.Attr, 0, 7), slog.String("user", res.User), slog.String("client", req.Client))
	// Fields a decision does not have (no IP, no method) are left out.
	for _, a := range []slog.Attr{slog.String("ip", ip), slog.String("decision", res.Decision.String()), slog.String("reason", res.Reason),
		slog.String("method", res.Method), slog.String("provider", res.Provider)} {
		if a.Value.String() != "" {
			attrs = append(attrs, a)
		}
	}
	if h := e.log.Handler(); h.Enabled(ctx, slog.LevelInfo) {
		// LogAttrs, without the caller's program counter: no handler here
		// shows the source, and finding it walks the stack every decision.
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "decision", 0)
		r.AddAttrs(attrs...)
		h.Handle(ctx, r)
	}
	err := e.db.Audit(store.Entry{
		Time: e.now(), User: res.User, Tenant: res.Tenant, Client: req.Client, IP: ip,
		Decision: res.Decision.String(), Reason: res.Reason, Method: res.Method, Provider: res.Provider,
		Class: res.Class,
	})
	if err != nil {
		e.log.ErrorContext(ctx, "audit write failed", "err", err)
	}
}

// messages returns the texts of the first named tenant that exists.
func (e *Engine) messages(names ...string) Messages {
	for _, n := range names {
		if t := e.rules().tenants[n]; t != nil {
			return t.Messages
		}
	}
	return DefaultMessages()
}

// rules are the settings a reload swaps at once.
type rules struct {
	tenants  map[string]*Tenant
	senders  map[string]Sender
	checkers map[string]PasswordChecker
}

// rules returns the settings in force.
func (e *Engine) rules() *rules { return e.current.Load() }

// Reload puts new tenants, senders and password checkers in force at once.
// Decisions already under way finish with what they started with;
// challenges, held logins and everything in the store carry on.
func (e *Engine) Reload(tenants []Tenant, senders map[string]Sender, checkers map[string]PasswordChecker) {
	r := &rules{tenants: make(map[string]*Tenant, len(tenants)), senders: senders, checkers: checkers}
	for i := range tenants {
		t := tenants[i]
		t.office = newNetworks(t.OfficeNetworks)
		r.tenants[t.Name] = &t
	}
	e.current.Store(r)
}

// Tenant returns the named tenant's settings, or nil.
func (e *Engine) Tenant(name string) *Tenant { return e.rules().tenants[name] }

// newState returns a random 128-bit State in hex: ASCII-safe for gateways
// that mangle binary State.
func (e *Engine) newState() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return "", fmt.Errorf("new state: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func reject(reason, msg string) Result { return Result{Decision: Reject, Reason: reason, Message: msg} }

func accept(reason, msg string) Result { return Result{Decision: Accept, Reason: reason, Message: msg} }

// fill replaces {name} placeholders in a message. For a number it also
// picks the form a word takes with it: {name:one|other} becomes one when
// the number is 1 and other else ("{tries} {tries:try|tries} left").
func fill(msg string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		msg = plural(msg, strings.TrimSuffix(kv[i], "}")+":", kv[i+1])
	}
	return strings.NewReplacer(kv...).Replace(msg)
}

// plural replaces each open+"one|other}" in msg by one when n is "1", by
// other else.
func plural(msg, open, n string) string {
	for {
		i := strings.Index(msg, open)
		if i < 0 {
			return msg
		}
		end := strings.IndexByte(msg[i:], '}')
		if end < 0 {
			return msg
		}
		one, other, _ := strings.Cut(msg[i+len(open):i+end], "|")
		form := other
		if n == "1" {
			form = one
		}
		msg = msg[:i] + form + msg[i+end+1:]
	}
}

// lockUser waits until no other challenge of user is being started, and
// returns the function that lets the next one go. Other users never wait:
// a slow provider holds up only the user it is sending to. While waiting
// it holds one of the I/O slots, taken without waiting; ok is false when
// all are taken, or when user already has a challenge being started and
// another waiting behind it: so one user's logins behind a provider that
// hangs take two slots at most, and cannot fill the share that every
// other user's challenges need.
func (e *Engine) lockUser(user string) (unlock func(), ok bool) {
	e.sendingMu.Lock()
	l := e.sending[user]
	if l != nil && l.waiters >= 2 {
		e.sendingMu.Unlock()
		return nil, false
	}
	done, ok := e.io.try()
	if !ok {
		e.sendingMu.Unlock()
		return nil, false
	}
	if l == nil {
		l = &userLock{}
		e.sending[user] = l
	}
	l.waiters++
	e.sendingMu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		e.sendingMu.Lock()
		if l.waiters--; l.waiters == 0 {
			delete(e.sending, user)
		}
		e.sendingMu.Unlock()
		done()
	}, true
}

// isNotFound reports whether err is the store's ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
