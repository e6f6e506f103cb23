package policy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/otpgate/otpgate/dictionary"
	"github.com/otpgate/otpgate/policy"
)

// directory is a fake PasswordChecker with one user.
type directory struct {
	down  bool
	calls int
}

func (d *directory) CheckPassword(_ context.Context, user, password string, _ []dictionary.Attribute) (policy.Identity, error) {
	d.calls++
	switch {
	case d.down:
		return policy.Identity{}, errors.New("dc1: connection refused")
	case user == "nina" && password == "right":
		return policy.Identity{Phone: "06 1111 3333", Email: "nina@example.com"}, nil
	}
	return policy.Identity{}, policy.ErrBadPassword
}

func TestFirstFactorDirectory(t *testing.T) {
	dir := &directory{}
	f := newFixture(t, func(c *policy.Config) {
		c.Checkers = map[string]policy.PasswordChecker{policy.FirstFactorLDAP: dir}
	}, withTenantChange("acme", func(t *policy.Tenant) { t.CreateUsers, t.CountryCode = true, "31" }))
	ldap := func(user, pw string) policy.Request {
		r := login(user, ipX)
		r.FirstFactor, r.Password = policy.FirstFactorLDAP, pw
		return r
	}
	check(t, f.decide(ldap("nina", "wrong")), want{policy.Reject, "bad_password", msgs.BadPassword, ""})
	// Right: nina is created from the directory and sent a code.
	check(t, f.decide(ldap("nina", "right")), want{policy.Challenge, "challenge", "Enter the code sent to +31 6*****33 (or type resend)", "sms"})
	if u := f.user("nina"); u.Phone != "+31611113333" || u.Email != "nina@example.com" || u.Tenant != "acme" || u.Method != policy.MethodSMS {
		t.Errorf("got %+v, want nina made from the directory", u)
	}
	// The directory down: fail closed.
	dir.down = true
	check(t, f.decide(ldap("nina", "right")), want{policy.Reject, "first_factor_unavailable", msgs.Unavailable, ""})
	// No checker for the mode: fail closed too.
	r := ldap("nina", "right")
	r.FirstFactor = policy.FirstFactorRADIUS
	check(t, f.decide(r), want{policy.Reject, "first_factor_unavailable", msgs.Unavailable, ""})
}

func TestFirstFactorNoCreateWithoutTheSetting(t *testing.T) {
	dir := &directory{}
	f := newFixture(t, func(c *policy.Config) {
		c.Checkers = map[string]policy.PasswordChecker{policy.FirstFactorLDAP: dir}
	})
	r := login("nina", ipX)
	r.FirstFactor, r.Password = policy.FirstFactorLDAP, "right"
	check(t, f.decide(r), want{policy.Reject, "unknown_user", msgs.BadPassword, ""})
}
