package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/store"
)

// dummyHash is compared against when a user has no password, so that the
// time taken does not tell whether the user exists.
const dummyHash = "$2a$10$3d9s7OWWbSj1RVyW7tgJ9eAN4/7tGhP1JcrJ6M4gKxo7kc3j3Df3i"

// login decides a new login (PRODUCT.md step 3).
func (e *Engine) login(ctx context.Context, req Request) (Result, error) {
	name := store.NormalizeName(req.User)
	if name == "" {
		return reject("no_user_name", e.messages(req.Tenant).BadPassword), nil
	}
	if req.SignIn && codeOnly(req) {
		return e.askCodeOnly(req)
	}
	var u store.User
	var proven, known, preapproved bool
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		known = err == nil
		if err != nil && !isNotFound(err) {
			return err
		}
		t := e.rules().tenants[tenantName(u, req)]
		if !known || t == nil {
			return nil
		}
		now := e.now()
		// The reconnect window is the address's: a computer name
		// (req.Machine) is whatever the client says, so it proves nothing.
		if t.ReconnectWindow > 0 && req.IP.IsValid() {
			at, ok := tx.Proven(name, ipKey(req.IP))
			proven = ok && !at.After(now) && now.Sub(at) < t.ReconnectWindow
		}
		if req.NoChallenge {
			until, ok := tx.Preapproved(name)
			preapproved = ok && now.Before(until)
		}
		return nil
	})
	if err != nil {
		return Result{User: name}, fmt.Errorf("read user: %w", err)
	}

	// A locked-out user hears so whatever the password, so that the
	// answer does not tell whether it was right (PRODUCT.md step 3d). The
	// sign-in page tells only after the password (signInSecondFactor).
	if known && e.now().Before(u.LockedUntil) && !req.SignIn {
		return Result{Decision: Reject, Reason: "locked", User: name, Tenant: tenantName(u, req),
			Message: e.messages(tenantName(u, req), req.Tenant).Locked}, nil
	}
	tn := tenantName(u, req)
	t := e.rules().tenants[tn]
	if t == nil {
		return Result{Decision: Reject, Reason: "unknown_tenant", User: name, Tenant: tn,
			Message: DefaultMessages().Unavailable}, nil
	}
	if req.CodeInPassword == CodeAppend {
		// Split the code off first, so that a malformed value costs no
		// round trip to the directory.
		var bad bool
		req, bad = e.splitCode(req, t, u)
		if bad && !e.trusted(t, u, req, proven) {
			return Result{Decision: Reject, Reason: "code_missing", User: name, Tenant: t.Name, Message: e.codeInPassword(t, u)}, nil
		}
	}
	res, id, ok := e.firstFactor(ctx, req, t, &u, &known)
	if !ok {
		res.User = name
		return res, nil
	}
	if len(t.RequiredGroups) > 0 && !inGroup(id.Groups, t.RequiredGroups) {
		return Result{Decision: Reject, Reason: "not_in_required_group", User: name, Tenant: t.Name, Message: t.Messages.BadPassword}, nil
	}
	req.given = id
	res = e.secondFactor(ctx, req, t, u, known, proven, preapproved)
	res.User, res.Tenant = name, t.Name
	return e.withReply(ctx, res, req, t, u, id), nil
}

// tenantName is the tenant whose settings decide for u: their own, or the
// gateway's for users who have none (and for unknown users).
func tenantName(u store.User, req Request) string {
	if u.Tenant != "" {
		return u.Tenant
	}
	return req.Tenant
}

// firstFactor checks the password where the gateway leaves that to us,
// and returns what the directory or upstream server said of the user.
func (e *Engine) firstFactor(ctx context.Context, req Request, t *Tenant, u *store.User, known *bool) (Result, Identity, bool) {
	m := t.Messages
	switch req.FirstFactor {
	case FirstFactorLocal:
		hash := u.PasswordHash
		if !*known || hash == "" {
			hash = dummyHash
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(req.Password))
		if err != nil || hash == dummyHash {
			return reject("bad_password", m.BadPassword), Identity{}, false
		}
		return Result{}, Identity{}, true
	case FirstFactorLDAP, FirstFactorRADIUS:
		checker := e.rules().checkers[req.FirstFactor]
		if checker == nil {
			e.log.ErrorContext(ctx, "no checker for the first factor", "first_factor", req.FirstFactor, "client", req.Client)
			return reject("first_factor_unavailable", m.Unavailable), Identity{}, false
		}
		done, ok := e.io.try()
		if !ok {
			return e.busy(req, t, ""), Identity{}, false
		}
		id, err := checker.CheckPassword(ctx, req.User, req.Password, req.NAS)
		done()
		switch {
		case errors.Is(err, ErrBadPassword):
			return reject("bad_password", m.BadPassword), Identity{}, false
		case err != nil:
			e.log.WarnContext(ctx, "first factor unavailable", "first_factor", req.FirstFactor, "user", store.NormalizeName(req.User), "err", err)
			return reject("first_factor_unavailable", m.Unavailable), Identity{}, false
		}
		if err := e.learn(t, store.NormalizeName(req.User), u, known, id); err != nil {
			e.log.ErrorContext(ctx, "store what the directory knows", "user", store.NormalizeName(req.User), "err", err)
		}
		return Result{}, id, true
	}
	return Result{}, Identity{}, true
}

// learn fills in what the directory knows of a user whose password it
// accepted: a phone number and e-mail address the store lacks, and, where
// the tenant allows, the user themself.
func (e *Engine) learn(t *Tenant, name string, u *store.User, known *bool, id Identity) error {
	if !*known && !t.CreateUsers {
		return nil
	}
	return e.db.Update(func(tx *store.Tx) error {
		cur, err := tx.User(name)
		switch {
		case isNotFound(err) && !*known:
			cur = store.User{Name: name}
		case err != nil:
			return err
		}
		changed := false
		if cur.Phone == "" && id.Phone != "" {
			if p, err := phone.Parse(id.Phone, t.CountryCode); err == nil {
				cur.Phone, changed = p, true
			}
		}
		if cur.Email == "" && id.Email != "" && strings.Contains(id.Email, "@") {
			cur.Email, changed = strings.TrimSpace(id.Email), true
		}
		// A user with no method (new, or added without one) gets the one
		// the number or address makes possible, of those the tenant
		// allows, as user add gives it.
		if cur.Method == "" && cur.TOTP == nil {
			switch {
			case cur.Phone != "" && t.allows(MethodSMS):
				cur.Method, changed = MethodSMS, true
			case cur.Email != "" && t.allows(MethodEmail):
				cur.Method, changed = MethodEmail, true
			}
		}
		if !changed && *known {
			return nil
		}
		now := e.now()
		if !*known {
			cur.Created, cur.Tenant = now, t.Name
		}
		cur.Updated = now
		if err := tx.PutUser(cur); err != nil {
			return err
		}
		*u, *known = cur, true
		return nil
	})
}

// secondFactor applies the tenant's mode, the trusted places and, when
// none lets the user through, starts a challenge.
func (e *Engine) secondFactor(ctx context.Context, req Request, t *Tenant, u store.User, known, proven, preapproved bool) Result {
	if req.SignIn {
		return e.signInSecondFactor(ctx, req, t, u, known)
	}
	m := t.Messages
	if !known && !t.AllowUnknownUsers {
		return reject("unknown_user", m.BadPassword)
	}
	if t.Mode == ModeOff {
		return accept("tenant_2fa_off", "")
	}
	if u.TwoFactor == "off" {
		return accept("user_2fa_off", "")
	}
	methods := e.methods(t, u)
	if len(methods) == 0 {
		if t.Mode == ModeOptional && u.TwoFactor != "on" {
			return accept("no_second_factor_optional", "")
		}
		if req.NoChallenge || !t.Enrolment || !t.AskPhone || !t.allows(MethodSMS) || e.rules().senders[MethodSMS] == nil {
			return reject("no_second_factor", m.NoSecondFactor)
		}
	}
	if req.CodeInPassword == CodeAppend && !e.trusted(t, u, req, proven) {
		return e.appended(ctx, req, t, u, methods)
	}
	if ip := req.IP; ip.IsValid() {
		switch {
		case t.inOffice(ip):
			return accept("office_network", m.OfficeIP)
		case containsAddr(u.HomeIPs, ip):
			return accept("home_ip", m.HomeIP)
		case remembered(u, ip, e.now()):
			return accept("remembered_ip", m.HomeIP)
		case proven:
			return accept("reconnect", m.Reconnected)
		}
	}
	if req.NoChallenge {
		if preapproved {
			return accept("preapproved", "")
		}
		return e.hold(ctx, req, t, u, methods)
	}
	if len(methods) == 0 {
		res, err := e.askPhone(req, t, u)
		if err != nil {
			e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "err", err)
			return Result{Decision: Reject, Reason: "error", Message: m.Unavailable}
		}
		return res
	}
	res, err := e.challenge(ctx, req, t, u, methods)
	if err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "method", methods[0], "err", err)
		return Result{Decision: Reject, Reason: "error", Method: methods[0], Message: m.Unavailable}
	}
	return res
}

// methods lists the second factors u can be asked for, in the order to
// try them: an authenticator app being linked, the primary method, the
// backup, an enrolled authenticator app, and, where the tenant enrols at
// login, the phone and e-mail on file; each only if the tenant allows it
// and it can be used.
func (e *Engine) methods(t *Tenant, u store.User) []string {
	var cands []string
	if u.PendingTOTP != nil {
		cands = append(cands, MethodTOTP)
	}
	cands = append(cands, u.Method, u.BackupMethod)
	if u.TOTP != nil {
		cands = append(cands, MethodTOTP)
	}
	if t.Enrolment && u.Phone != "" {
		cands = append(cands, MethodSMS)
	}
	if t.Enrolment && u.Email != "" {
		cands = append(cands, MethodEmail)
	}
	var out []string
	for _, m := range cands {
		if m != "" && !slices.Contains(out, m) && t.allows(m) && e.usable(m, u) {
			out = append(out, m)
		}
	}
	return out
}

// trusted reports whether a login comes from a trusted place.
func (e *Engine) trusted(t *Tenant, u store.User, req Request, proven bool) bool {
	if proven {
		return true
	}
	ip := req.IP
	return ip.IsValid() && (t.inOffice(ip) || containsAddr(u.HomeIPs, ip) || remembered(u, ip, e.now()))
}

// remembered reports whether ip is one of u's remembered IPs at now.
func remembered(u store.User, ip netip.Addr, now time.Time) bool {
	ip = ip.Unmap()
	for _, r := range u.Remembered {
		if r.IP == ip && now.Before(r.Until) {
			return true
		}
	}
	return false
}

// usable reports whether u can be asked for a code by method.
func (e *Engine) usable(method string, u store.User) bool {
	switch method {
	case MethodTOTP:
		return u.TOTP != nil || u.PendingTOTP != nil
	case MethodSMS, MethodVoice:
		return u.Phone != "" && e.rules().senders[method] != nil
	case MethodEmail:
		return u.Email != "" && e.rules().senders[method] != nil
	}
	return false
}

// ipKey is the form an end-user IP takes in records.
func ipKey(ip netip.Addr) netip.Addr { return ip.Unmap() }
