package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/crypto/bcrypt"

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
	methods := e.methods(t, u)
	if len(methods) == 0 {
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
	res, err := e.challenge(ctx, req, t, u, methods)
	if err != nil {
		e.log.ErrorContext(ctx, "challenge failed", "user", u.Name, "method", methods[0], "err", err)
		return Result{Decision: Reject, Reason: "error", Method: methods[0], Message: m.Unavailable}
	}
	return res
}

// methods lists the second factors u can be asked for, in the order to
// try them: the primary method, the backup, then the others the tenant
// allows, each only if the tenant allows it and u can use it.
func (e *Engine) methods(t *Tenant, u store.User) []string {
	var out []string
	for _, m := range slices.Concat([]string{u.Method, u.BackupMethod}, t.Methods) {
		if m != "" && !slices.Contains(out, m) && t.allows(m) && e.usable(m, u) {
			out = append(out, m)
		}
	}
	return out
}

// usable reports whether u can be asked for a code by method.
func (e *Engine) usable(method string, u store.User) bool {
	switch method {
	case MethodTOTP:
		return u.TOTP != nil
	case MethodSMS, MethodVoice:
		return u.Phone != "" && e.senders[method] != nil
	case MethodEmail:
		return u.Email != "" && e.senders[method] != nil
	}
	return false
}

// ipKey is the form an end-user IP takes in records.
func ipKey(ip netip.Addr) netip.Addr { return ip.Unmap() }
