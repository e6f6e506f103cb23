package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

func (s *Service) addUser(name string, ch *UserChange) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if ch == nil {
		ch = &UserChange{}
	}
	now := s.now()
	u := store.User{Name: store.NormalizeName(name), Created: now}
	if ch.Tenant == nil {
		switch len(s.Tenants) {
		case 1:
			t := s.Tenants[0].Name
			ch.Tenant = &t
		case 0:
			return "", usagef("no tenants are configured; add one under tenants: in the config file")
		default:
			return "", usagef("say which tenant: otpgate user add %s --tenant NAME (one of %s)", name, s.tenantNames())
		}
	}
	if err := s.apply(&u, ch, now); err != nil {
		return "", err
	}
	defaultMethod(&u)
	err := s.DB.Update(func(tx *store.Tx) error {
		if _, err := tx.User(u.Name); err == nil {
			return usagef("user %s exists; change it with: otpgate user set %s ...", u.Name, u.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("added user %s (tenant %s)\n", u.Name, u.Tenant), nil
}

func (s *Service) setUser(name string, ch *UserChange) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if ch == nil {
		return "", usagef("nothing to change; see: otpgate user set --help")
	}
	err := s.DB.Update(func(tx *store.Tx) error {
		u, err := tx.User(name)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("no user %s; add one with: otpgate user add %s", store.NormalizeName(name), name)
		}
		if err != nil {
			return err
		}
		if err := s.apply(&u, ch, s.now()); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("updated user %s\n", store.NormalizeName(name)), nil
}

// apply checks a change and makes it to u.
func (s *Service) apply(u *store.User, ch *UserChange, now time.Time) error {
	var problems []error
	if ch.Tenant != nil {
		if s.tenant(*ch.Tenant) == nil {
			problems = append(problems, usagef("--tenant %q: no such tenant; configured: %s", *ch.Tenant, s.tenantNames()))
		} else {
			u.Tenant = *ch.Tenant
		}
	}
	if ch.Phone != nil {
		cc := ""
		if t := s.tenant(u.Tenant); t != nil {
			cc = t.CountryCode
		}
		p, err := normalizePhone(*ch.Phone, cc)
		problems = append(problems, err)
		u.Phone = p
	}
	if ch.Email != nil {
		problems = append(problems, checkEmail(*ch.Email))
		u.Email = strings.TrimSpace(*ch.Email)
	}
	for _, f := range []struct {
		flag string
		v    *string
		dst  *string
	}{{"method", ch.Method, &u.Method}, {"backup-method", ch.BackupMethod, &u.BackupMethod}} {
		if f.v == nil {
			continue
		}
		m := strings.ToLower(strings.TrimSpace(*f.v))
		if m == "none" {
			m = ""
		}
		if err := checkMethod(f.flag, m); err != nil {
			problems = append(problems, err)
		} else if t := s.tenant(u.Tenant); t != nil && m != "" && !slices.Contains(t.Methods, m) {
			problems = append(problems, usagef("--%s %s: tenant %s allows %s", f.flag, m, t.Name, strings.Join(t.Methods, ", ")))
		}
		*f.dst = m
	}
	if u.BackupMethod != "" && u.BackupMethod == u.Method {
		problems = append(problems, usagef("--backup-method %s: that is the primary method already; choose another or none", u.BackupMethod))
	}
	if ch.TwoFactor != nil {
		switch v := strings.ToLower(*ch.TwoFactor); v {
		case "on", "off":
			u.TwoFactor = v
		case "tenant", "default", "":
			u.TwoFactor = ""
		default:
			problems = append(problems, usagef("--2fa %q: want on, off or tenant", *ch.TwoFactor))
		}
	}
	if ch.ClearHomeIPs {
		u.HomeIPs, u.Remembered = nil, nil
	}
	for _, ip := range ch.AddHomeIPs {
		p, err := parseHomeIP(ip)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !slices.Contains(u.HomeIPs, p) {
			u.HomeIPs = append(u.HomeIPs, p)
		}
	}
	if ch.PasswordHash != nil {
		u.PasswordHash = *ch.PasswordHash
	}
	if err := errors.Join(problems...); err != nil {
		return usageError{err.Error()}
	}
	u.Updated = now
	return nil
}

func (s *Service) showUser(name string) (string, error) {
	var u store.User
	err := s.DB.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", usagef("no user %s; see who there is with: otpgate user list", store.NormalizeName(name))
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, Printable(v)) }
	row("name", u.Name)
	row("tenant", u.Tenant)
	row("2fa", orText(u.TwoFactor, "as tenant"))
	row("method", orText(u.Method, "none"))
	row("backup method", orText(u.BackupMethod, "none"))
	row("phone", orText(u.Phone, "none"))
	row("email", orText(u.Email, "none"))
	ips := make([]string, len(u.HomeIPs))
	for i, p := range u.HomeIPs {
		ips[i] = prefixText(p)
	}
	row("home ips", orText(strings.Join(ips, " "), "none"))
	now := s.now()
	row("totp", totpText(u))
	row("recovery codes", fmt.Sprintf("%d left", len(u.Recovery)))
	switch {
	case now.Before(u.LockedUntil):
		row("locked", "until "+u.LockedUntil.Format(time.RFC3339))
	case len(u.Failures) > 0:
		row("locked", fmt.Sprintf("no (%d recent wrong codes)", len(u.Failures)))
	default:
		row("locked", "no")
	}
	var rem []string
	for _, r := range u.Remembered {
		if now.Before(r.Until) {
			rem = append(rem, r.IP.String()+" until "+r.Until.Format(time.RFC3339))
		}
	}
	row("remembered ips", orText(strings.Join(rem, ", "), "none"))
	row("invitation", inviteText(u, now))
	row("password", map[bool]string{true: "set (local)", false: "none"}[u.PasswordHash != ""])
	row("created", u.Created.Format(time.RFC3339))
	row("updated", u.Updated.Format(time.RFC3339))
	w.Flush()
	return b.String(), nil
}

func (s *Service) listUsers() (string, error) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tTENANT\tMETHOD\t2FA\tTOTP\tPHONE\tEMAIL")
	err := s.DB.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) error {
			method := orText(u.Method, "-")
			if u.BackupMethod != "" {
				method += "," + u.BackupMethod
			}
			// Names and addresses may come from a directory or a login: escaped.
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", Printable(u.Name), Printable(u.Tenant), Printable(method),
				Printable(orText(u.TwoFactor, "tenant")), map[bool]string{true: "yes", false: "no"}[u.TOTP != nil || u.PendingTOTP != nil],
				Printable(orText(u.Phone, "-")), Printable(orText(u.Email, "-")))
			return nil
		})
	})
	w.Flush()
	return b.String(), err
}

func (s *Service) deleteUser(name string) (string, error) {
	err := s.DB.Update(func(tx *store.Tx) error { return tx.DeleteUser(name) })
	if errors.Is(err, store.ErrNotFound) {
		return "", usagef("no user %s; see who there is with: otpgate user list", store.NormalizeName(name))
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("deleted user %s\n", store.NormalizeName(name)), nil
}

// totpText says whether u has an authenticator app, and how far off its
// clock was last found.
func totpText(u store.User) string {
	var parts []string
	if u.TOTP != nil {
		t := "active"
		if u.TOTP.Drift != 0 {
			t += fmt.Sprintf(" (phone clock %+ds)", u.TOTP.Drift*30)
		}
		parts = append(parts, t)
	}
	if u.PendingTOTP != nil {
		parts = append(parts, "pending (waiting for a first code)")
	}
	return orText(strings.Join(parts, "; "), "not enrolled")
}

// defaultMethod gives a user without a primary method the one they can
// use: their authenticator app, else SMS to their phone, else e-mail.
func defaultMethod(u *store.User) {
	if u.Method != "" {
		return
	}
	switch {
	case u.TOTP != nil:
		u.Method = policy.MethodTOTP
	case u.Phone != "":
		u.Method = policy.MethodSMS
	case u.Email != "":
		u.Method = policy.MethodEmail
	}
}

func orText(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// prefixText writes a single address without its /32 or /128.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
