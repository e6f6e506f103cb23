package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/crypto/bcrypt"

	"github.com/otpgate/otpgate/otp"
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
	var u store.User
	var proven, known bool
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		known = err == nil
		if err != nil && !isNotFound(err) {
			return err
		}
		if known && req.IP.IsValid() {
			if t := e.tenants[tenantName(u, req)]; t != nil && t.ReconnectWindow > 0 {
				at, ok := tx.Proven(name, req.IP)
				now := e.now()
				proven = ok && !at.After(now) && now.Sub(at) < t.ReconnectWindow
			}
		}
		return nil
	})
	if err != nil {
		return Result{User: name}, fmt.Errorf("read user: %w", err)
	}

	res, ok := e.firstFactor(req, u, known)
	if !ok {
		res.User = name
		return res, nil
	}

	tn := tenantName(u, req)
	t := e.tenants[tn]
	if t == nil {
		return Result{Decision: Reject, Reason: "unknown_tenant", User: name, Tenant: tn,
			Message: DefaultMessages().Unavailable}, nil
	}
	res = e.secondFactor(ctx, req, t, u, known, proven)
	res.User, res.Tenant = name, t.Name
	return res, nil
}

// tenantName is the tenant whose settings decide for u: their own, or the
// gateway's for users who have none (and for unknown users).
func tenantName(u store.User, req Request) string {
	if u.Tenant != "" {
		return u.Tenant
	}
	return req.Tenant
}

// firstFactor checks the password where the gateway leaves that to us.
func (e *Engine) firstFactor(req Request, u store.User, known bool) (Result, bool) {
	if req.FirstFactor != FirstFactorLocal {
		return Result{}, true
	}
	hash := u.PasswordHash
	if !known || hash == "" {
		hash = dummyHash
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(req.Password))
	if err != nil || hash == dummyHash {
		return reject("bad_password", e.messages(u.Tenant, req.Tenant).BadPassword), false
	}
	return Result{}, true
}

// secondFactor applies the tenant's mode, the trusted places and, when
// none lets the user through, starts a challenge.
func (e *Engine) secondFactor(ctx context.Context, req Request, t *Tenant, u store.User, known, proven bool) Result {
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
	method := e.method(t, u)
	if method == "" {
		if t.Mode == ModeOptional && u.TwoFactor != "on" {
			return accept("no_second_factor_optional", "")
		}
		return reject("no_second_factor", m.NoSecondFactor)
	}
	if ip := req.IP; ip.IsValid() {
		switch {
		case t.inOffice(ip):
			return accept("office_network", m.OfficeIP)
		case containsAddr(u.HomeIPs, ip):
			return accept("home_ip", m.HomeIP)
		case proven:
			return accept("reconnect", m.Reconnected)
		}
	}
	res, err := e.challenge(ctx, req, t, u, method)
	if err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "method", method, "err", err)
		return Result{Decision: Reject, Reason: "error", Method: method, Message: m.Unavailable}
	}
	return res
}

// method picks the second factor for u: the primary method when the tenant
// allows it and it can be used, else the first the tenant allows that can.
// It returns "" when the user has none.
func (e *Engine) method(t *Tenant, u store.User) string {
	for _, m := range slices.Concat([]string{u.Method}, t.Methods) {
		if m != "" && t.allows(m) && e.usable(m, u) {
			return m
		}
	}
	return ""
}

// usable reports whether u can be asked for a code by method.
func (e *Engine) usable(method string, u store.User) bool {
	switch method {
	case MethodTOTP:
		return u.TOTP != nil
	case MethodSMS:
		return u.Phone != "" && e.send != nil
	case MethodEmail:
		return u.Email != "" && e.send != nil
	}
	return false
}

// challenge stores a new challenge for u and, for a sent code, delivers it.
func (e *Engine) challenge(ctx context.Context, req Request, t *Tenant, u store.User, method string) (Result, error) {
	id, err := e.newState()
	if err != nil {
		return Result{}, err
	}
	ch := store.Challenge{
		ID: id, User: u.Name, Client: req.Client, Method: method,
		EndUserIP: req.IP, Expires: e.now().Add(t.CodeTTL),
	}
	msg := t.Messages.TOTPPrompt
	if method != MethodTOTP {
		to, masked := u.Phone, MaskPhone(u.Phone)
		if method == MethodEmail {
			to, masked = u.Email, MaskEmail(u.Email)
		}
		code, err := otp.NewCode(e.rand, t.CodeDigits)
		if err != nil {
			return Result{}, err
		}
		ch.Salt = id
		ch.CodeHash = e.key.Hash(codeContext(ch.Salt), code)
		ch.Destination = masked
		if err := e.deliver(ctx, method, to, code, t); err != nil {
			e.log.WarnContext(ctx, "delivery failed", "user", u.Name, "method", method, "err", err)
			return Result{Decision: Reject, Reason: "delivery_failed", Method: method, Message: t.Messages.DeliveryFailed}, nil
		}
		msg = fill(t.Messages.CodeSent, "{destination}", masked)
	}
	if err := e.db.Update(func(tx *store.Tx) error { return tx.PutChallenge(ch) }); err != nil {
		return Result{}, fmt.Errorf("store challenge: %w", err)
	}
	return Result{Decision: Challenge, Reason: "challenge", Method: method, State: id, Message: msg}, nil
}

// deliver sends code by method through the Sender.
func (e *Engine) deliver(ctx context.Context, method, to, code string, t *Tenant) error {
	return e.send.Send(ctx, smsMessage(method, to, code, t))
}

// ipKey is the form an end-user IP takes in records.
func ipKey(ip netip.Addr) netip.Addr { return ip.Unmap() }
