package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/dictionary"
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
			return "", usagef("say which tenant: otpgate user add %s --tenant NAME (one of %s)", clip(name), s.tenantNames())
		}
	}
	note, err := s.apply(&u, ch, now, true, flagLabel)
	if err != nil {
		return "", err
	}
	err = s.DB.Update(func(tx *store.Tx) error {
		if _, err := tx.User(u.Name); err == nil {
			return failf("user %s exists; change it with: otpgate user set %s ...", u.Name, u.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("added user %s (tenant %s)\n", Printable(u.Name), u.Tenant) + note + s.notes(u), nil
}

func (s *Service) setUser(name string, ch *UserChange) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if ch == nil || len(changeFields(ch)) == 0 {
		return "", usagef("nothing to change: give what to change, such as otpgate user set %s --phone +31612345678; see: otpgate user set --help", clip(name))
	}
	var u store.User
	var note string
	same := false
	err := s.DB.Update(func(tx *store.Tx) error {
		var err error
		u, err = s.user(tx, name)
		if err != nil {
			return err
		}
		was := u
		if note, err = s.apply(&u, ch, s.now(), false, flagLabel); err != nil {
			return err
		}
		if same = sameUser(was, u); same {
			return nil
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return "", err
	}
	if same {
		return fmt.Sprintf("user %s already had these settings; nothing changed\n", Printable(u.Name)), nil
	}
	return fmt.Sprintf("updated user %s\n", Printable(u.Name)) + note + s.notes(u), nil
}

// touchedBy reports the fields a change gives.
func touchedBy(ch *UserChange) func(string) bool {
	return func(field string) bool {
		switch field {
		case "tenant":
			return ch.Tenant != nil
		case "phone":
			return ch.Phone != nil
		case "email":
			return ch.Email != nil
		case "method":
			return ch.Method != nil
		case "backup_method":
			return ch.BackupMethod != nil
		}
		return false
	}
}

// sameUser reports whether a change left a user as they were.
func sameUser(a, b store.User) bool {
	a.Updated, b.Updated = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// apply checks a change and makes it to u: every problem at once, each
// named by label, and the tenant's rules for what the user ends up with
// (see fits). A user left without a method gets the default one. It
// returns a note for the admin about what it chose.
func (s *Service) apply(u *store.User, ch *UserChange, now time.Time, all bool, label labels) (string, error) {
	var problems []error
	unsure := false // a field failed, so the tenant's rules cannot be judged
	if ch.Tenant != nil {
		if s.tenant(*ch.Tenant) == nil {
			problems = append(problems, usagef("%s %q: no such tenant; configured: %s", label("tenant"), clip(*ch.Tenant), s.tenantNames()))
			unsure = true
		} else {
			u.Tenant = *ch.Tenant
		}
	}
	if ch.Phone != nil {
		cc := ""
		if t := s.tenant(u.Tenant); t != nil {
			cc = t.CountryCode
		}
		p, err := normalizePhone(label("phone"), *ch.Phone, cc)
		if err != nil {
			problems, unsure = append(problems, err), true
		}
		u.Phone = p
	}
	if ch.Email != nil {
		if err := checkEmail(label("email"), *ch.Email); err != nil {
			problems, unsure = append(problems, err), true
		}
		u.Email = strings.TrimSpace(*ch.Email)
	}
	for _, f := range []struct {
		field string
		v     *string
		dst   *string
	}{{"method", ch.Method, &u.Method}, {"backup_method", ch.BackupMethod, &u.BackupMethod}} {
		if f.v == nil {
			continue
		}
		m := strings.ToLower(strings.TrimSpace(*f.v))
		if m == "none" {
			m = ""
		}
		if err := checkMethod(label(f.field), m); err != nil {
			problems = append(problems, err)
			unsure = true
			continue
		}
		*f.dst = m
	}
	if ch.TwoFactor != nil {
		switch v := strings.ToLower(*ch.TwoFactor); v {
		case "on", "off":
			u.TwoFactor = v
		case "tenant", "default", "":
			u.TwoFactor = ""
		default:
			problems = append(problems, usagef("%s %q: want on, off or tenant", label("2fa"), clip(*ch.TwoFactor)))
		}
	}
	if ch.ClearHomeIPs {
		u.HomeIPs, u.Remembered = nil, nil
	}
	for _, ip := range ch.AddHomeIPs {
		p, err := parseHomeIP(label("home_ips"), ip)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !slices.Contains(u.HomeIPs, p) {
			u.HomeIPs = append(u.HomeIPs, p)
		}
	}
	if ch.ClearReply {
		u.Reply = nil
	}
	problems = append(problems, addReply(u, ch.AddReply)...)
	if ch.PasswordHash != nil {
		u.PasswordHash = *ch.PasswordHash
	}
	var note string
	if ch.Method == nil {
		if note = defaultMethod(u, s.tenant(u.Tenant)); note != "" {
			note = "note: " + note + "\n"
		}
	}
	if u.BackupMethod != "" && u.BackupMethod == u.Method {
		problems = append(problems, usagef("%s %s: that is the primary method already; choose another or none", label("backup_method"), u.BackupMethod))
	}
	if !unsure {
		problems = append(problems, s.fits(u, ch, all, label)...)
	}
	if err := errors.Join(problems...); err != nil {
		return "", usageError{err.Error()}
	}
	u.Updated = now
	return note, nil
}

func (s *Service) showUser(name string) (string, error) {
	var u store.User
	err := s.DB.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", failf("no user %s; see who there is with: otpgate user list", clip(store.NormalizeName(name)))
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
	row("reply", orText(strings.Join(u.Reply, " "), "none"))
	now := s.now()
	row("totp", totpText(u))
	switch blocked, advice := access(s.tenant(u.Tenant), u); {
	case blocked != "":
		row("can log in", "NO: "+blocked+"; "+advice)
	case advice != "":
		row("can log in", "yes; "+advice)
	default:
		row("can log in", "yes")
	}
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

// listBlock is how many users' rows are aligned together: a listing is
// sent on as it is made, so its columns are as wide as the widest value
// in each block of this many rows.
const listBlock = 10000

func (s *Service) listUsers() (string, error) {
	out := s.output()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tTENANT\tMETHOD\t2FA\tTOTP\tPHONE\tEMAIL\tCAN LOG IN")
	rows := 0
	err := s.DB.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) error {
			if rows++; rows%listBlock == 0 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			method := orText(u.Method, "-")
			if u.BackupMethod != "" {
				method += "," + u.BackupMethod
			}
			totp := "no"
			switch {
			case u.TOTP != nil:
				totp = "yes"
			case u.PendingTOTP != nil:
				totp = "pending"
			}
			login := "yes"
			if blocked, _ := access(s.tenant(u.Tenant), u); blocked != "" {
				login = "NO: " + blocked
			}
			// Names and addresses may come from a directory or a login: escaped.
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", Printable(u.Name), Printable(u.Tenant), Printable(method),
				Printable(orText(u.TwoFactor, "tenant")), totp,
				Printable(orText(u.Phone, "-")), Printable(orText(u.Email, "-")), Printable(login))
			return out.err
		})
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return out.rest(), err
}

func (s *Service) deleteUser(name string) (string, error) {
	err := s.DB.Update(func(tx *store.Tx) error { return tx.DeleteUser(name) })
	if errors.Is(err, store.ErrNotFound) {
		return "", failf("no user %s; see who there is with: otpgate user list", clip(store.NormalizeName(name)))
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("deleted user %s\n", Printable(store.NormalizeName(name))), nil
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

// addReply adds reply attributes to u: those given replace what u has of
// the same attributes, and several of one attribute given at once are all
// kept.
func addReply(u *store.User, add []string) []error {
	var problems []error
	var keys []dictionary.Key
	var fresh []string
	for _, s := range add {
		r, err := dictionary.ParseReply(s)
		if err != nil {
			problems = append(problems, usagef("--reply %q: %v", s, err))
			continue
		}
		keys = append(keys, r.Key())
		fresh = append(fresh, r.String())
	}
	if len(problems) > 0 || len(fresh) == 0 {
		return problems
	}
	var kept []string
	for _, s := range u.Reply {
		if r, err := dictionary.Parse(s); err != nil || !slices.Contains(keys, r.Key()) {
			kept = append(kept, s)
		}
	}
	u.Reply = append(kept, fresh...)
	return nil
}
