package policy

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/store"
)

// The user's own pages (package web) enrol and manage a user's second
// factor. What they may do, all here:
//
//   - An invitation link finds its user only while it is open: its token
//     matches the keyed hash in the user's record, it has not expired, and
//     no enrolment has used it yet. Wrong passwords typed on its page
//     count against it, and maxInviteFailures of them void it.
//   - A user who has an authenticator app already proves a code from it,
//     or a recovery code, before a new secret is made (Reprove): the link
//     is no way to take over an account with an app.
//   - Every code typed on these pages is answered through Decide, as an
//     answer to a challenge of the client ClientEnrol or ClientAccount:
//     the same ±1 step window, replay guard, lockout and audit entry as a
//     gateway's login. Where the page has no first factor, the challenges
//     are NoFirstFactor: only codes from an app, nothing sent, wrong
//     answers counted against the page only.

// Clients of the user's own pages, as the audit log names them.
const (
	// ClientEnrol is the enrolment page behind an invitation link.
	ClientEnrol = "web-enrol"
	// ClientAccount is the signed-in user's own page (/me).
	ClientAccount = "web-account"
)

// NotMeLock is how long "this was not me" locks an account: until an
// administrator unlocks it.
const NotMeLock = 100 * 365 * 24 * time.Hour

// Enrolment is an open invitation, as its page sees it.
type Enrolment struct {
	User, Tenant, Lang string
	Expires            time.Time
	// HasTOTP says the user has an authenticator app in use: they prove a
	// code from it before linking another.
	HasTOTP bool
	// Phone is the number on file, masked; empty when none.
	Phone string
	// CanSMS says the tenant allows SMS and can send it.
	CanSMS bool
}

// Enrolment returns the open invitation of token.
func (e *Engine) Enrolment(token string) (Enrolment, bool) {
	u, ok := e.invited(token)
	if !ok {
		return Enrolment{}, false
	}
	t := e.rules().tenants[u.Tenant]
	en := Enrolment{User: u.Name, Tenant: u.Tenant, Expires: u.Invite.Expires, HasTOTP: u.TOTP != nil}
	if t != nil {
		en.Lang = t.Language
		en.CanSMS = t.allows(MethodSMS) && e.rules().senders[MethodSMS] != nil
	}
	if u.Phone != "" {
		en.Phone = phone.Mask(u.Phone)
	}
	return en, true
}

// invited returns the user whose invitation token is, while it is open.
func (e *Engine) invited(token string) (store.User, bool) {
	if len(token) != 32 {
		return store.User{}, false
	}
	var u store.User
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.InviteUser(InviteHash(e.key, token))
		return err
	})
	if err != nil || !e.now().Before(u.Invite.Expires) {
		return store.User{}, false
	}
	return u, true
}

// EnrolPassword checks the password of the user invited by token with the
// first factor mode (FirstFactorLocal, LDAP or RADIUS). A wrong one counts
// against the invitation, and is recorded like a gateway's.
func (e *Engine) EnrolPassword(ctx context.Context, token, mode, password string, ip netip.Addr) bool {
	start := time.Now()
	u, ok := e.invited(token)
	if !ok {
		return false
	}
	t := e.rules().tenants[u.Tenant]
	if t == nil {
		return false
	}
	req := Request{Client: ClientEnrol, Tenant: u.Tenant, FirstFactor: mode, User: u.Name, Password: password, IP: ip}
	known := true
	res, _, ok := e.firstFactor(ctx, req, t, &u, &known)
	if ok {
		return true
	}
	res.User, res.Tenant = u.Name, t.Name
	e.decided(ctx, req, res, start)
	if res.Reason != "bad_password" {
		return false
	}
	err := e.db.Update(func(tx *store.Tx) error {
		cur, err := tx.User(u.Name)
		if err != nil || cur.Invite == nil || !slices.Equal(cur.Invite.Hash, u.Invite.Hash) {
			return err
		}
		cur.Invite.Failures++
		if cur.Invite.Failures >= maxInviteFailures {
			e.log.WarnContext(ctx, "invitation voided after wrong passwords", "user", u.Name, "ip", ip.String())
			if err := VoidInvite(tx, &cur); err != nil {
				return err
			}
		}
		return tx.PutUser(cur)
	})
	if err != nil {
		e.log.ErrorContext(ctx, "count a wrong password against an invitation", "user", u.Name, "err", err)
	}
	return false
}

// UseInvite ends the invitation of token once it has enrolled its user,
// and reports whether it was still open.
func (e *Engine) UseInvite(token string) (bool, error) {
	hash := InviteHash(e.key, token)
	used := false
	err := e.db.Update(func(tx *store.Tx) error {
		used = false
		u, err := tx.InviteUser(hash)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		used = true
		if err := VoidInvite(tx, &u); err != nil {
			return err
		}
		u.Updated = e.now()
		return tx.PutUser(u)
	})
	return used, err
}

// Reprove asks user for a code of the second factor they have, as a
// challenge of client answered through Decide: a code from their
// authenticator app, or (a first factor proved) a code sent by their
// method; a recovery code answers it too. Without a first factor
// (noFirstFactor) only an app's code or a recovery code will do and
// nothing is sent.
func (e *Engine) Reprove(ctx context.Context, client, user string, noFirstFactor bool) Result {
	u, err := e.account(user)
	if err != nil {
		return Result{Decision: Reject, Reason: "error", Message: DefaultMessages().Unavailable}
	}
	t := e.rules().tenants[u.Tenant]
	if t == nil {
		return Result{Decision: Reject, Reason: "unknown_tenant", Message: DefaultMessages().Unavailable}
	}
	if noFirstFactor || u.TOTP != nil {
		if u.TOTP == nil && len(u.Recovery) == 0 {
			return Result{Decision: Reject, Reason: "no_second_factor", Message: t.Messages.NoSecondFactor}
		}
		id, err := e.newState()
		if err != nil {
			return Result{Decision: Reject, Reason: "error", Message: t.Messages.Unavailable}
		}
		ch := live.Challenge{ID: id, User: u.Name, Client: client, Method: MethodTOTP,
			Expires: e.now().Add(t.CodeTTL), NoFirstFactor: noFirstFactor}
		if err := e.challenges.Put(&ch); err != nil {
			return Result{Decision: Reject, Reason: "error", Message: t.Messages.Unavailable}
		}
		return Result{Decision: Challenge, Reason: "challenge", Method: MethodTOTP, State: ch.ID, Message: t.Messages.SignInCode}
	}
	methods := e.methods(t, u)
	if len(methods) == 0 {
		return Result{Decision: Reject, Reason: "no_second_factor", Message: t.Messages.NoSecondFactor}
	}
	res, err := e.challenge(ctx, Request{Client: client, User: u.Name, Tenant: u.Tenant}, t, u, methods)
	if err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "err", err)
		return Result{Decision: Reject, Reason: "error", Message: t.Messages.Unavailable}
	}
	return res
}

// StartLink makes a new authenticator-app secret for user, pending until
// its first code is proved, and returns it (base32) and the State of the
// challenge whose answer proves it, through Decide as client. The caller
// has made sure the user may link an app (see Reprove).
func (e *Engine) StartLink(client, user string, noFirstFactor bool) (secretText, state string, err error) {
	secretText, err = otp.NewSecret(e.rand)
	if err != nil {
		return "", "", err
	}
	var t *Tenant
	err = e.db.Update(func(tx *store.Tx) error {
		u, err := tx.User(user)
		if err != nil {
			return err
		}
		if t = e.rules().tenants[u.Tenant]; t == nil {
			return fmt.Errorf("tenant %q is not configured", u.Tenant)
		}
		sealed, err := SealTOTP(e.key, u.Name, secretText)
		if err != nil {
			return err
		}
		u.PendingTOTP = &store.TOTP{Sealed: sealed, Created: e.now()}
		u.Updated = e.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return "", "", fmt.Errorf("link an authenticator app: %w", err)
	}
	if state, err = e.newState(); err != nil {
		return "", "", err
	}
	ch := live.Challenge{ID: state, User: store.NormalizeName(user), Client: client, Method: MethodTOTP,
		Enrol: enrolLink, Expires: e.now().Add(t.CodeTTL), NoFirstFactor: noFirstFactor}
	if err := e.challenges.Put(&ch); err != nil {
		return "", "", fmt.Errorf("link an authenticator app: %w", err)
	}
	return secretText, ch.ID, nil
}

// DropLink forgets the authenticator-app secret StartLink made for user
// when they leave it unproved (they chose text messages instead, or went
// back): a pending app comes first at a gateway's login (see methods),
// which would ask for a code from an app they never set up. Only that
// secret is dropped: one made since, by the page or by
// "otpgate user totp", stays.
func (e *Engine) DropLink(user, secretText string) error {
	err := e.db.Update(func(tx *store.Tx) error {
		u, err := tx.User(user)
		if err != nil || u.PendingTOTP == nil {
			return err
		}
		pending, err := openTOTP(e.key, u.Name, u.PendingTOTP)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(pending), []byte(secretText)) != 1 {
			return nil
		}
		u.PendingTOTP, u.Updated = nil, e.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return fmt.Errorf("drop an app link: %w", err)
	}
	return nil
}

// StartPhone sends a code to number, which becomes user's phone once the
// code is proved through Decide as client (the challenge whose State it
// returns). It goes under the tenant's send limits as any code.
func (e *Engine) StartPhone(ctx context.Context, client, user, number string) Result {
	u, err := e.account(user)
	if err != nil {
		return Result{Decision: Reject, Reason: "error", Message: DefaultMessages().Unavailable}
	}
	t := e.rules().tenants[u.Tenant]
	if t == nil || !t.allows(MethodSMS) || e.rules().senders[MethodSMS] == nil {
		return Result{Decision: Reject, Reason: "method_unavailable", Message: DefaultMessages().Unavailable}
	}
	m := t.Messages
	to, err := phone.Parse(number, t.CountryCode)
	if err != nil {
		return Result{Decision: Reject, Reason: "bad_phone", Message: m.BadPhone}
	}
	unlock, ok := e.lockUser(u.Name)
	if !ok {
		return e.busy(Request{Client: client}, t, MethodSMS)
	}
	defer unlock()
	ch := live.Challenge{User: u.Name, Client: client, Method: MethodSMS, Enrol: enrolPhone, To: to,
		Expires: e.now().Add(t.CodeTTL)}
	out, err := e.issue(ctx, t, u, &ch)
	switch {
	case err != nil:
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "err", err)
		return Result{Decision: Reject, Reason: "error", Message: m.Unavailable}
	case out.refused != "":
		return Result{Decision: Reject, Reason: out.refused, Message: refusalMessage(m, out.refused)}
	case out.failed:
		return Result{Decision: Reject, Reason: "delivery_failed", Message: m.DeliveryFailed}
	}
	if err := e.challenges.Put(&ch); err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "err", err)
		return Result{Decision: Reject, Reason: "error", Message: m.Unavailable}
	}
	return Result{Decision: Challenge, Reason: "challenge", Method: MethodSMS, Provider: out.provider, State: ch.ID, Message: prompt(m, ch)}
}

// NewRecovery gives user a new set of recovery codes, voiding the old,
// and returns them: the only time they are shown.
func (e *Engine) NewRecovery(user string) ([]string, error) {
	var codes []string
	err := e.db.Update(func(tx *store.Tx) error {
		u, err := tx.User(user)
		if err != nil {
			return err
		}
		var hashes [][]byte
		if codes, hashes, err = NewRecoveryCodes(e.rand, e.key, u.Name); err != nil {
			return err
		}
		u.Recovery, u.Updated = hashes, e.now()
		return tx.PutUser(u)
	})
	if err != nil {
		return nil, fmt.Errorf("new recovery codes: %w", err)
	}
	return codes, nil
}

// Profile is what the user's own page shows of them.
type Profile struct {
	User store.User
	// Tenant is the user's tenant; nil when it is not configured.
	Tenant *Tenant
	// Logins are the newest decisions on the user's logins, newest first.
	Logins []store.Entry
}

// maxLoginsShown is how many logins the user's own page lists.
const maxLoginsShown = 20

// Profile returns user as their own page shows them.
func (e *Engine) Profile(user string) (Profile, error) {
	var a Profile
	name := store.NormalizeName(user)
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		if a.User, err = tx.User(name); err != nil {
			return err
		}
		a.Logins, err = tx.AuditLog(maxLoginsShown, func(en store.Entry) bool {
			return en.User == name && en.Admin == nil && (en.Decision == "accept" || en.Decision == "reject")
		})
		return err
	})
	if err != nil {
		return Profile{}, fmt.Errorf("read account: %w", err)
	}
	a.Tenant = e.rules().tenants[a.User.Tenant]
	return a, nil
}

// ForgetIP forgets ip as a remembered place of user, and as the place of
// their reconnect window.
func (e *Engine) ForgetIP(user string, ip netip.Addr) error {
	ip = ip.Unmap()
	return e.db.Update(func(tx *store.Tx) error {
		u, err := tx.User(user)
		if err != nil {
			return err
		}
		u.Remembered = slices.DeleteFunc(slices.Clone(u.Remembered), func(r store.RememberedIP) bool { return r.IP == ip })
		u.Updated = e.now()
		if err := tx.ForgetProvenIP(u.Name, ip); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
}

// NotMe is the user's "this was not me" about a login: their account is
// locked until an administrator unlocks it, their remembered and proven
// places are forgotten, and the audit log and the log say so.
func (e *Engine) NotMe(ctx context.Context, user string, ip netip.Addr, about time.Time) error {
	now := e.now()
	var u store.User
	err := e.db.Update(func(tx *store.Tx) error {
		var err error
		if u, err = tx.User(user); err != nil {
			return err
		}
		u.LockedUntil, u.Failures, u.Remembered, u.Updated = now.Add(NotMeLock), nil, nil, now
		if err := tx.ForgetProven(u.Name); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return fmt.Errorf("lock account: %w", err)
	}
	e.log.WarnContext(ctx, "a user says a login was not theirs; account locked until an administrator unlocks it",
		"user", u.Name, "ip", ip.String(), "login_at", about.UTC().Format(time.RFC3339))
	e.record(ctx, Request{Client: ClientAccount, IP: ip}, Result{Decision: Reject, Reason: "not_me", User: u.Name, Tenant: u.Tenant})
	return nil
}

// account reads user.
func (e *Engine) account(user string) (store.User, error) {
	var u store.User
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(user)
		return err
	})
	return u, err
}

// TimeZone is where times are told to the users of tenant: its
// time_zone as in force now; nil means the server's zone.
func (e *Engine) TimeZone(tenant string) *time.Location {
	if t := e.rules().tenants[tenant]; t != nil {
		return t.TimeZone
	}
	return nil
}

// SetDisplayNames puts in force the names users are shown for gateways
// ("Citrix Workspace" for the client "rdgw"), by client name.
func (e *Engine) SetDisplayNames(names map[string]string) { e.displayNames.Store(&names) }

// DisplayName is the name users are shown for client: its display name,
// else its configured name.
func (e *Engine) DisplayName(client string) string {
	if m := e.displayNames.Load(); m != nil && (*m)[client] != "" {
		return (*m)[client]
	}
	return client
}
