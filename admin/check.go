package admin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/store"
)

// labels names a user's field as the admin wrote it: as a flag on the
// command line, as a column in a CSV file. The fields are the CSV
// columns: tenant, phone, email, method, backup_method, totp_secret,
// home_ips, 2fa.
type labels func(field string) string

// flagLabel names fields as the flags of "user add" and "user set".
func flagLabel(field string) string {
	switch field {
	case "home_ips":
		return "--home-ip"
	case "totp_secret":
		return "--secret"
	}
	return "--" + strings.ReplaceAll(field, "_", "-")
}

// columnLabel names fields as the columns of "user import".
func columnLabel(field string) string { return field }

// fits checks that a user, as change ch left them, can be asked for what
// their methods need under their tenant's rules. Unless all (a new user),
// a rule is only checked when ch gave one of its fields, so that an
// unrelated change to an old record goes through.
func (s *Service) fits(u *store.User, ch *UserChange, all bool, label labels) []error {
	given := touchedBy(ch)
	touched := func(f string) bool { return all || given(f) }
	t := s.tenant(u.Tenant)
	if t == nil {
		if touched("tenant") {
			return nil // the tenant's own problem is reported already
		}
		return []error{usagef("%s: %s's tenant %s is not configured any more; give one of %s", label("tenant"), u.Name, u.Tenant, s.tenantNames())}
	}
	var problems []error
	for _, f := range []struct{ field, m string }{{"method", u.Method}, {"backup_method", u.BackupMethod}} {
		if f.m == "" {
			continue
		}
		if !slices.Contains(t.Methods, f.m) {
			if touched(f.field) || touched("tenant") {
				problems = append(problems, usagef("%s %s: tenant %s allows %s (its methods:)", label(f.field), f.m, t.Name, strings.Join(t.Methods, ", ")))
			}
			continue
		}
		var need string
		switch {
		case (f.m == policy.MethodSMS || f.m == policy.MethodVoice) && u.Phone == "":
			need = "phone"
		case f.m == policy.MethodEmail && u.Email == "":
			need = "email"
		}
		switch {
		case need == "" || !touched(f.field) && !touched(need) && !touched("tenant"):
		case given(need):
			problems = append(problems, usagef("%s is empty, but %s %s needs one; give %s another value too", label(need), label(f.field), f.m, label(f.field)))
		default:
			problems = append(problems, usagef("%s %s needs %s; give %s too", label(f.field), f.m, map[string]string{"phone": "a phone number", "email": "an e-mail address"}[need], label(need)))
		}
	}
	if u.Phone != "" && len(t.Limits.Countries) > 0 && (touched("phone") || touched("tenant")) {
		if cc := phone.CountryCode(u.Phone); !slices.Contains(t.Limits.Countries, cc) {
			problems = append(problems, usagef("%s %s: tenant %s sends codes only to country code %s (its limits.countries), not to +%s",
				label("phone"), u.Phone, t.Name, strings.Join(t.Limits.Countries, ", "), cc))
		}
	}
	return problems
}

// defaultMethod gives a user without a primary method the first one they
// can use that the tenant allows: their authenticator app, else SMS to
// their phone, else e-mail. It is not their backup method; when that is
// the only one, it becomes the primary and the backup is cleared. It
// returns a note for the admin when it did that.
func defaultMethod(u *store.User, t *policy.Tenant) string {
	if u.Method != "" {
		return ""
	}
	var cands []string
	for _, c := range []struct {
		m  string
		ok bool
	}{{policy.MethodTOTP, u.TOTP != nil}, {policy.MethodSMS, u.Phone != ""}, {policy.MethodEmail, u.Email != ""}} {
		if c.ok && (t == nil || slices.Contains(t.Methods, c.m)) {
			cands = append(cands, c.m)
		}
	}
	for _, m := range cands {
		if m != u.BackupMethod {
			u.Method = m
			return ""
		}
	}
	if len(cands) > 0 {
		u.Method, u.BackupMethod = u.BackupMethod, ""
		return fmt.Sprintf("%s is %s's only method, so it is the primary one and there is no backup", u.Method, Printable(u.Name))
	}
	return ""
}

// access says whether u can log in under t, as far as the store and the
// tenant's rules tell (not whether a provider is configured): blocked is
// empty when they can, else a short reason; advice says what to do, or
// what will happen at the first login.
func access(t *policy.Tenant, u store.User) (blocked, advice string) {
	if t == nil {
		return "tenant " + Printable(u.Tenant) + " is not configured", fmt.Sprintf("move them: otpgate user set %s --tenant NAME", Printable(u.Name))
	}
	if t.Mode == policy.ModeOff || u.TwoFactor == "off" {
		return "", ""
	}
	var usable []string
	for _, m := range []string{u.Method, u.BackupMethod} {
		if m != "" && slices.Contains(t.Methods, m) && has(u, m) {
			usable = append(usable, m)
		}
	}
	allows := func(m string) bool { return slices.Contains(t.Methods, m) }
	enrol := t.Enrolment && (u.Phone != "" && allows(policy.MethodSMS) || u.Email != "" && allows(policy.MethodEmail))
	if (u.TOTP != nil || u.PendingTOTP != nil) && allows(policy.MethodTOTP) {
		usable = append(usable, policy.MethodTOTP)
	}
	if len(usable) == 1 && usable[0] == policy.MethodTOTP && u.TOTP == nil {
		return "", "their authenticator app is still being linked: their first login needs a code from it (or confirm one now: otpgate user totp " + u.Name + " --confirm CODE)"
	}
	switch {
	case len(usable) > 0:
		return "", ""
	case enrol:
		return "", "they are enrolled at their first login, by a code sent to what is on file"
	case t.Mode == policy.ModeOptional && u.TwoFactor != "on":
		return "", "they log in without a code until they have a second factor (tenant " + t.Name + " is optional)"
	case t.Enrolment && t.AskPhone && allows(policy.MethodSMS):
		return "", "they are asked for a mobile number at their first login"
	}
	var why string
	switch m := u.Method; {
	case m == "":
		why = "no second factor"
	case !allows(m):
		why = fmt.Sprintf("tenant %s does not allow %s", t.Name, m)
	case m == policy.MethodTOTP:
		why = "no authenticator app linked"
	case m == policy.MethodEmail:
		why = "no e-mail address"
	default:
		why = "no phone number"
	}
	advice = fmt.Sprintf("tenant %s requires a second factor; give --phone or --email (otpgate user set %s ...), or link an app: otpgate user totp %s", t.Name, Printable(u.Name), Printable(u.Name))
	if len(u.Recovery) > 0 {
		advice += "; their recovery codes cannot help, as no challenge can be started"
	}
	return why, advice
}

// has reports whether u has what method m needs.
func has(u store.User, m string) bool {
	switch m {
	case policy.MethodTOTP:
		return u.TOTP != nil || u.PendingTOTP != nil
	case policy.MethodSMS, policy.MethodVoice:
		return u.Phone != ""
	case policy.MethodEmail:
		return u.Email != ""
	}
	return false
}

// notes are what the admin should hear after changing u: whether they
// can log in, and what will not work yet.
func (s *Service) notes(u store.User) string {
	var b strings.Builder
	blocked, advice := access(s.tenant(u.Tenant), u)
	switch {
	case blocked != "":
		fmt.Fprintf(&b, "warning: %s cannot log in: %s; %s\n", Printable(u.Name), blocked, advice)
	case advice != "":
		fmt.Fprintf(&b, "note: %s: %s\n", Printable(u.Name), advice)
	}
	if u.Method == policy.MethodTOTP && u.TOTP == nil && u.PendingTOTP == nil && blocked == "" {
		fmt.Fprintf(&b, "note: %s's method is totp but no app is linked yet; link one with: otpgate user totp %s\n", Printable(u.Name), Printable(u.Name))
	}
	return b.String()
}
